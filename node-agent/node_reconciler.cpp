#include "node-agent/node_reconciler.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_socket/agent_socket.h"
#include "dataplane/tail_calls.h"
#include "node-agent/agent_metrics.h"
#include "packages/digest.h"
#include "system/file.h"
#include "system/log.h"

namespace bpfchain::agent {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::seconds kFirstRetry{10};
constexpr std::chrono::seconds kMaxRetry{300};

Result<uint64_t> currentNetnsInode() {
  struct stat st {};
  // thread-self: the agent's data-plane thread may have entered another namespace (--netns).
  if (stat("/proc/thread-self/ns/net", &st) != 0)
    return systemError(errno, "stat /proc/thread-self/ns/net");
  return static_cast<uint64_t>(st.st_ino);
}

std::string specDigest(const ChainDecl& chain) {
  // Everything of the declaration that changes what runs; YAML is a stable rendering.
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginSeq << chain.priority
      << std::string(dataplane::hookName(chain.hook));
  for (const auto& p : chain.programs) {
    out << YAML::BeginSeq << p.name << p.url << p.sha256 << p.entry << p.nextMap << p.enabled;
    out << YAML::BeginMap;
    for (const auto& [k, v] : p.globalData)
      out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap << p.freshState << YAML::BeginSeq;
    for (const auto& m : p.freshMaps)
      out << m;
    out << YAML::EndSeq << YAML::BeginSeq;
    for (const auto& a : p.mapArgs) {
      out << a.map << (a.mode == btf::MapArgMode::Replace ? "replace" : "merge");
      for (const auto& e : a.entries)
        out << btf::argValueToYaml(e.key) << btf::argValueToYaml(e.value);
    }
    out << YAML::EndSeq << YAML::EndSeq;
  }
  out << YAML::EndSeq;
  return out.c_str();
}

YAML::Node programToYaml(const dataplane::ProgramSpec& p) {
  YAML::Node n;
  n["id"] = p.id;
  n["objectPath"] = p.objectPath;
  n["entry"] = p.entry;
  n["nextMap"] = p.nextMap;
  n["enabled"] = p.enabled;
  for (const auto& [k, v] : p.globalData)
    n["globalData"][k] = v;
  if (p.freshState)
    n["freshState"] = true;
  for (const auto& m : p.freshMaps)
    n["freshMaps"].push_back(m);
  for (const auto& a : p.mapArgs) {
    YAML::Node arg;
    arg["map"] = a.map;
    arg["mode"] = a.mode == btf::MapArgMode::Replace ? "replace" : "merge";
    arg["entries"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& e : a.entries) {
      YAML::Node entry;
      entry["key"] = btf::argValueToYaml(e.key);
      entry["value"] = btf::argValueToYaml(e.value);
      arg["entries"].push_back(entry);
    }
    n["mapArgs"].push_back(arg);
  }
  return n;
}

dataplane::ProgramSpec programFromYaml(const YAML::Node& n) {
  dataplane::ProgramSpec p;
  p.id = n["id"].as<std::string>();
  p.objectPath = n["objectPath"].as<std::string>();
  p.entry = n["entry"].as<std::string>();
  p.nextMap = n["nextMap"].as<std::string>();
  p.enabled = n["enabled"].as<bool>();
  for (const auto& kv : n["globalData"])
    p.globalData[kv.first.as<std::string>()] = kv.second.as<std::string>();
  p.freshState = n["freshState"].IsDefined() && n["freshState"].as<bool>();
  for (const auto& m : n["freshMaps"])
    p.freshMaps.push_back(m.as<std::string>());
  for (const auto& a : n["mapArgs"]) {
    dataplane::MapArgSpec arg;
    arg.map = a["map"].as<std::string>();
    arg.mode =
        a["mode"].as<std::string>() == "merge" ? btf::MapArgMode::Merge : btf::MapArgMode::Replace;
    for (const auto& e : a["entries"]) {
      auto key = btf::argValueFromYaml(e["key"], "key");
      auto value = btf::argValueFromYaml(e["value"], "value");
      if (!key || !value)
        throw YAML::Exception(YAML::Mark::null_mark(), "mapArgs entry without key or value");
      arg.entries.push_back(btf::MapArgEntry{std::move(*key), std::move(*value)});
    }
    p.mapArgs.push_back(std::move(arg));
  }
  return p;
}

std::string instanceKey(int ifindex, dataplane::Hook hook) {
  return std::to_string(ifindex) + "/" + std::string(dataplane::hookName(hook));
}

// A file and pin name per attachment: readable (the container id's start) and unique (a
// digest of the whole identity), short enough for bpffs names.
std::string attachmentKey(const PodRef& ref) {
  std::string identity = ref.containerId;
  identity += '\0';
  identity += ref.network;
  identity += '\0';
  identity += ref.podIfname;
  return ref.containerId.substr(0, 64) + "-" + packages::sha256Hex(identity).substr(0, 16);
}

bool isPodKey(const std::string& key) {
  return key.rfind("pods/", 0) == 0;
}

std::vector<const ChainDecl*> inOrder(std::vector<const ChainDecl*> chains) {
  std::sort(chains.begin(), chains.end(), [](const ChainDecl* a, const ChainDecl* b) {
    return std::tie(a->priority, a->name) < std::tie(b->priority, b->name);
  });
  return chains;
}

} // namespace

NodeReconciler::NodeReconciler(ReconcilerOptions options, ProgramResolver& resolver,
                               AgentMetrics* metrics)
    : options_(std::move(options)), resolver_(resolver), metrics_(metrics) {}

NodeReconciler::~NodeReconciler() = default;

Result<std::unique_ptr<NodeReconciler>> NodeReconciler::create(ReconcilerOptions options,
                                                               ProgramResolver& resolver,
                                                               AgentMetrics* metrics) {
  std::unique_ptr<NodeReconciler> r(new NodeReconciler(std::move(options), resolver, metrics));
  auto inode = currentNetnsInode();
  if (!inode)
    return std::move(inode).error();
  r->netnsInode_ = *inode;
  std::error_code ec;
  for (const char* sub : {"/instances", "/pods"}) {
    fs::create_directories(r->options_.stateDir + sub, ec);
    if (ec)
      return Error(ec.value(), "create " + r->options_.stateDir + sub + ": " + ec.message());
  }
  if (auto adopted = r->adoptPinned(); !adopted)
    return std::move(adopted).error();
  r->loadPods();
  r->publishMetrics();
  return r;
}

Result<void> NodeReconciler::adoptPinned() {
  std::string root = options_.bpffsRoot + "/" + std::to_string(netnsInode_);
  std::error_code ec;
  if (!fs::exists(root, ec))
    return {};
  auto interfaces = listInterfaces();
  auto adopt = [&](const fs::path& dir, const std::string& key, int ifindex,
                   dataplane::Hook hook) -> Result<void> {
    std::string ifname;
    for (const auto& [name, index] : interfaces)
      if (index == ifindex)
        ifname = name;
    auto chain = dataplane::Chain::open(dir.string(), hook);
    if (!chain)
      return std::move(chain).error().context("adopt " + dir.string());
    auto instance = std::make_unique<Instance>(
        Instance{key, dir.string(), ifindex, ifname, hook, std::move(*chain), {}, {}});
    if (!ifname.empty()) {
      auto attachment = dataplane::Attachment::adopt(instance->chain.rootId(), ifindex, hook,
                                                     instance->dir + "/link", options_.attach);
      if (attachment && attachment->has_value())
        instance->attachment = std::move(**attachment);
    }
    loadState(*instance);
    log::info("adopted pinned chains", {{"interface", ifname.empty() ? key : ifname},
                                        {"hook", dataplane::hookName(hook)},
                                        {"rootProgramId", instance->chain.rootId()},
                                        {"chains", instance->applied.size()},
                                        {"attached", instance->attachment.has_value()}});
    instances_[key] = std::move(instance);
    return {};
  };
  for (const auto& top : fs::directory_iterator(root, ec)) {
    std::string first = top.path().filename().string();
    bool pods = first == "pods";
    int ifindex = std::atoi(first.c_str());
    if (!pods && ifindex <= 0)
      continue; // pod-links/
    for (const auto& hookdir : fs::directory_iterator(top.path(), ec)) {
      auto hook = dataplane::parseHook(hookdir.path().filename().string());
      if (!hook)
        continue;
      if (!pods) {
        if (auto r = adopt(hookdir.path(), instanceKey(ifindex, *hook), ifindex, *hook); !r)
          return r;
        continue;
      }
      for (const auto& setdir : fs::directory_iterator(hookdir.path(), ec)) {
        std::string key = "pods/" + std::string(dataplane::hookName(*hook)) + "/" +
                          setdir.path().filename().string();
        if (auto r = adopt(setdir.path(), key, 0, *hook); !r)
          return r;
      }
    }
  }
  return {};
}

std::string NodeReconciler::stateFile(const std::string& key) const {
  std::string name = key;
  std::replace(name.begin(), name.end(), '/', '-');
  return options_.stateDir + "/instances/" + std::to_string(netnsInode_) + "-" + name + ".yaml";
}

void NodeReconciler::loadState(Instance& instance) const {
  std::string path = stateFile(instance.key);
  try {
    YAML::Node doc = YAML::LoadFile(path);
    // Only chains whose programs all still run as recorded are taken: the kernel is the truth.
    std::set<std::string> running;
    for (const auto& p : instance.chain.programs())
      running.insert(p.id);
    for (const auto& c : doc["chains"]) {
      AppliedChain applied;
      applied.generation = c["generation"].as<int64_t>();
      // Absent in the state of agents before references, and of inline chains. (A missing
      // key of a const node is invalid, and asking an invalid node its type throws: the whole
      // state would be dropped and every program reloaded.)
      if (const YAML::Node revision = c["revision"]; revision.IsDefined() && revision.IsScalar())
        applied.revision = revision.as<std::string>();
      bool complete = true;
      for (const auto& p : c["programs"]) {
        applied.programs.push_back(programFromYaml(p));
        if (applied.programs.back().enabled && !running.contains(applied.programs.back().id))
          complete = false;
      }
      for (const auto& m : c["monitors"]) {
        std::vector<MonitorMapDecl> monitors;
        for (const auto& d : m) {
          MonitorMapDecl decl;
          decl.map = d["map"].as<std::string>();
          decl.key = d["key"].as<std::string>();
          std::string a = d["aggregator"].as<std::string>();
          decl.aggregator = a == "sum"        ? Aggregator::Sum
                            : a == "max-rate" ? Aggregator::MaxRate
                            : a == "avg"      ? Aggregator::Avg
                                              : Aggregator::Scalar;
          monitors.push_back(decl);
        }
        applied.monitors.push_back(std::move(monitors));
      }
      if (complete)
        instance.applied[c["name"].as<std::string>()] = std::move(applied);
    }
  } catch (const YAML::Exception&) {
    // No or unreadable state: the chains on this instance are re-resolved from the spec, and
    // programs no chain claims are removed by the next apply.
  }
}

Result<void> NodeReconciler::saveState(const Instance& instance) const {
  YAML::Node doc;
  doc["ifindex"] = instance.ifindex;
  doc["interface"] = instance.ifname;
  doc["hook"] = std::string(dataplane::hookName(instance.hook));
  doc["chains"] = YAML::Node(YAML::NodeType::Sequence);
  for (const auto& [name, applied] : instance.applied) {
    YAML::Node c;
    c["name"] = name;
    c["generation"] = applied.generation;
    if (!applied.revision.empty())
      c["revision"] = applied.revision;
    c["programs"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& p : applied.programs)
      c["programs"].push_back(programToYaml(p));
    c["monitors"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& monitors : applied.monitors) {
      YAML::Node list(YAML::NodeType::Sequence);
      for (const auto& m : monitors) {
        YAML::Node d;
        d["map"] = m.map;
        d["key"] = m.key;
        d["aggregator"] = aggregatorName(m.aggregator);
        list.push_back(d);
      }
      c["monitors"].push_back(list);
    }
    doc["chains"].push_back(c);
  }
  // Not durable: the pins it describes do not survive a reboot either.
  return writeFileAtomic(stateFile(instance.key), YAML::Dump(doc) + "\n", {.durable = false});
}

Result<NodeReconciler::Instance*> NodeReconciler::instanceAt(const std::string& key,
                                                             const std::string& dir, int ifindex,
                                                             const std::string& ifname,
                                                             dataplane::Hook hook) {
  if (auto it = instances_.find(key); it != instances_.end()) {
    it->second->ifname = ifname;
    return it->second.get();
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Error(ec.value(), "create " + dir + ": " + ec.message());
  auto chain = dataplane::Chain::open(dir, hook);
  if (!chain)
    return std::move(chain).error();
  auto instance = std::make_unique<Instance>(
      Instance{key, dir, ifindex, ifname, hook, std::move(*chain), {}, {}});
  Instance* raw = instance.get();
  instances_[key] = std::move(instance);
  return raw;
}

void NodeReconciler::removeInstance(const std::string& key) {
  auto it = instances_.find(key);
  if (it == instances_.end())
    return;
  Instance& instance = *it->second;
  if (instance.attachment) {
    (void)instance.attachment->detach();
  } else if (!isPodKey(key) && !instance.ifname.empty()) {
    // Adopted pins whose attachment was not recognised: detach whatever runs our root.
    auto adopted =
        dataplane::Attachment::adopt(instance.chain.rootId(), instance.ifindex, instance.hook,
                                     instance.dir + "/link", options_.attach);
    if (adopted && adopted->has_value())
      (void)(*adopted)->detach();
  }
  log::info("root detached and unpinned: no chain runs there any more",
            {{"interface", instance.ifname.empty() ? key : instance.ifname},
             {"hook", dataplane::hookName(instance.hook)}});
  std::error_code ec;
  fs::remove(instance.dir + "/link", ec);
  (void)instance.chain.destroy();
  // The directory and its parents, once empty, up to the bpffs root.
  for (fs::path dir = instance.dir; dir.string().size() > options_.bpffsRoot.size();
       dir = dir.parent_path())
    fs::remove(dir, ec);
  fs::remove(stateFile(instance.key), ec);
  instances_.erase(it);
}

std::map<dataplane::Hook, std::vector<const ChainDecl*>>
NodeReconciler::podChains(const PodRef& pod) const {
  std::map<dataplane::Hook, std::vector<const ChainDecl*>> byHook;
  for (const auto& c : spec_.chains)
    if (c.forPods() && selectsPod_ && selectsPod_(c, pod.ns, pod.name))
      byHook[c.hook].push_back(&c);
  for (auto& [hook, chains] : byHook)
    chains = inOrder(chains);
  return byHook;
}

std::string NodeReconciler::podInstanceKey(dataplane::Hook hook,
                                           const std::vector<const ChainDecl*>& chains) const {
  std::string names;
  for (const ChainDecl* c : chains)
    names += c->name + ",";
  return "pods/" + std::string(dataplane::hookName(hook)) + "/" +
         packages::sha256Hex(names).substr(0, 16);
}

std::string NodeReconciler::podLinkPin(const PodRecord& pod, dataplane::Hook hook) const {
  return options_.bpffsRoot + "/" + std::to_string(netnsInode_) + "/pod-links/" +
         attachmentKey(pod.ref) + "-" + std::string(dataplane::hookName(hook));
}

namespace {

// The data plane counts programs across the whole instance (every chain on the interface);
// users count them within their BpfChain: "programs[4] (web/filter)" becomes
// "programs[1] (web/filter)" when filter is web's second program. The error says which
// program it is about (ProgramRef); its message starts with that program's field.
std::string chainLocalIndexes(const Error& error, const std::vector<const ChainDecl*>& chains) {
  const std::string& message = error.message();
  const auto& program = error.program();
  if (!program)
    return message;
  std::string field = "programs[" + std::to_string(program->index) + "] (" + program->id + ")";
  size_t slash = program->id.find('/');
  if (message.rfind(field, 0) != 0 || slash == std::string::npos)
    return message;
  std::string key = program->id.substr(0, slash), name = program->id.substr(slash + 1);
  for (const ChainDecl* c : chains) {
    if (chainKey(c->name) != key)
      continue;
    for (size_t i = 0; i < c->programs.size(); ++i)
      if (c->programs[i].name == name)
        return "programs[" + std::to_string(i) + "] (" + c->name + "/" + name + ")" +
               message.substr(field.size());
  }
  return message;
}

std::string aheadMessage(const std::vector<uint32_t>& ids) {
  std::string list;
  for (uint32_t id : ids)
    list += (list.empty() ? "" : ", ") + std::to_string(id);
  return std::to_string(ids.size()) + " other program" + (ids.size() == 1 ? "" : "s") + " (id " +
         list + ") run before this chain, and may end a packet before it runs";
}

ApplyFailure failureOf(const Error& error, const std::string& where,
                       const std::vector<const ChainDecl*>& chains) {
  ApplyFailure f = classifyApplyFailure(error, where);
  std::string local = chainLocalIndexes(error, chains);
  f.message = where.empty() ? local : where + ": " + local;
  return f;
}

} // namespace

void NodeReconciler::applyChains(Instance& inst, const std::vector<const ChainDecl*>& chains,
                                 const Resolved& resolved,
                                 std::map<std::string, ApplyFailure>& failures,
                                 std::map<std::string, double>* applySeconds) {
  std::string where = inst.ifname.empty() ? inst.key : inst.ifname;
  auto compose = [&](const std::map<std::string, AppliedChain>& applied) {
    std::vector<dataplane::ProgramSpec> all;
    for (const ChainDecl* c : chains)
      if (auto it = applied.find(c->name); it != applied.end())
        all.insert(all.end(), it->second.programs.begin(), it->second.programs.end());
    return all;
  };
  // Chains that left this instance go first (one step), then each chain moves on its own. The
  // first step also rewrites every mapArgs (level-triggered), except in a pass that only
  // follows links, which must stay cheap: it runs while pods are being added.
  size_t before = inst.applied.size();
  std::erase_if(inst.applied, [&](const auto& entry) {
    return std::none_of(chains.begin(), chains.end(),
                        [&](const ChainDecl* c) { return c->name == entry.first; });
  });
  bool baseNeeded = scope_ == ReconcileScope::Full || inst.applied.size() != before ||
                    inst.chain.programs().empty();
  if (auto base = baseNeeded ? inst.chain.apply(compose(inst.applied))
                             : Result<dataplane::ApplyReport>(dataplane::ApplyReport{});
      !base)
    for (const ChainDecl* c : chains)
      failures.try_emplace(c->name, failureOf(base.error(), where, chains));
  for (const ChainDecl* c : chains) {
    auto next = resolved.find(c->name);
    if (next == resolved.end() || !next->second)
      continue;
    auto current = inst.applied.find(c->name);
    if (current != inst.applied.end() && current->second.generation == c->generation &&
        current->second.programs == *next->second) {
      if (current->second.revision != c->revision) { // adopted from an older agent's state
        current->second.revision = c->revision;
        inst.stateSaved = false;
      }
      continue;
    }
    auto candidate = inst.applied;
    AppliedChain applied{c->generation, c->revision, *next->second, {}};
    for (const auto& p : c->programs)
      applied.monitors.push_back(p.monitorMaps);
    candidate[c->name] = std::move(applied);
    // One root runs every chain of the instance: a generation that would take the instance
    // past the kernel's tail-call limit is refused (its previous generation keeps running).
    std::vector<dataplane::ChainShare> shares;
    for (const ChainDecl* d : chains)
      if (auto it = candidate.find(d->name); it != candidate.end())
        shares.push_back({d->name, static_cast<size_t>(std::count_if(
                                       it->second.programs.begin(), it->second.programs.end(),
                                       [](const auto& p) { return p.enabled; }))});
    if (auto overflow = dataplane::tailCallOverflow(shares)) {
      Failure failure{"TailCallLimitExceeded",
                      where + " " + std::string(dataplane::hookName(inst.hook)) + ": " + *overflow};
      failures.try_emplace(c->name, std::move(failure));
      continue;
    }
    auto start = Clock::now();
    auto result = inst.chain.apply(compose(candidate));
    if (applySeconds)
      (*applySeconds)[c->name] += std::chrono::duration<double>(Clock::now() - start).count();
    if (result) {
      log::info("applied chain",
                {{"chain", c->name},
                 {"generation", c->generation},
                 {"interface", where},
                 {"hook", dataplane::hookName(inst.hook)},
                 {"seconds", std::chrono::duration<double>(Clock::now() - start).count()}});
      inst.applied = std::move(candidate);
      inst.stateSaved = false;
      noteUncarried(*c, where, result->uncarried);
    } else {
      failures.try_emplace(c->name, failureOf(result.error(), where, chains));
    }
  }
  if (inst.applied.size() != before)
    inst.stateSaved = false;
  // Rendering the state is most of a pass's CPU when nothing changed: write it only on change.
  if (inst.stateSaved)
    return;
  if (auto saved = saveState(inst); !saved)
    for (const ChainDecl* c : chains)
      failures.try_emplace(c->name, ApplyFailure{"StateWriteFailed", saved.error().message()});
  else
    inst.stateSaved = true;
}

void NodeReconciler::noteUncarried(const ChainDecl& chain, const std::string& where,
                                   const std::vector<dataplane::UncarriedState>& uncarried) {
  std::string digest = specDigest(chain);
  Uncarried& notes = uncarried_[chain.name];
  if (notes.specDigest != digest)
    notes = Uncarried{digest, {}};
  std::string prefix = chain.name + "/";
  for (const auto& u : uncarried) {
    if (u.programId.rfind(prefix, 0) != 0)
      continue;
    std::string line = u.programId.substr(prefix.size()) + ": " + u.map + " (" + u.reason + ")";
    if (notes.maps.insert(line).second)
      log::warning("map starts empty, not carried from the running version",
                   {{"chain", chain.name},
                    {"generation", chain.generation},
                    {"interface", where},
                    {"map", u.map},
                    {"program", u.programId},
                    {"reason", u.reason}});
  }
}

Result<void> NodeReconciler::linkPod(PodRecord& pod, dataplane::Hook hook, const std::string& key,
                                     bool verify) {
  auto found = instances_.find(key);
  if (found == instances_.end())
    return invalidError("no loaded chain set " + key + " for pod " + pod.ref.ns + "/" +
                        pod.ref.name);
  Instance& inst = *found->second;
  PodLink& link = pod.links[hook];
  if (link.attachment) {
    auto attached = verify ? link.attachment->attached() : Result<bool>(true);
    if (attached && !*attached)
      link.attachment.reset(); // detached behind our back: attach again
    else if (link.instanceKey == key)
      return {};
  }
  std::string where = std::string(dataplane::hookName(hook)) + " on " + pod.ref.hostIfname +
                      " (pod " + pod.ref.ns + "/" + pod.ref.name + ")";
  if (link.attachment) {
    if (auto r = link.attachment->replace(inst.chain.rootFd()); !r)
      return std::move(r).error().context(where);
  } else {
    std::error_code ec;
    fs::create_directories(fs::path(podLinkPin(pod, hook)).parent_path(), ec);
    auto adopted = dataplane::Attachment::adopt(inst.chain.rootId(), pod.ref.hostIfindex, hook,
                                                podLinkPin(pod, hook), options_.attach);
    if (adopted && adopted->has_value()) {
      link.attachment = std::move(**adopted);
    } else {
      auto attached = dataplane::Attachment::attach(inst.chain.rootFd(), pod.ref.hostIfindex, hook,
                                                    podLinkPin(pod, hook), options_.attach);
      if (!attached)
        return std::move(attached).error().context(where);
      link.attachment = std::move(*attached);
    }
  }
  link.instanceKey = key;
  return {};
}

void NodeReconciler::unlinkPod(PodRecord& pod, dataplane::Hook hook) {
  auto it = pod.links.find(hook);
  if (it == pod.links.end())
    return;
  if (it->second.attachment)
    (void)it->second.attachment->detach(); // fails only when the veth is gone already
  std::error_code ec;
  fs::remove(podLinkPin(pod, hook), ec);
  pod.links.erase(it);
}

std::string NodeReconciler::podRecordPath(const std::string& key) const {
  return options_.stateDir + "/pods/" + key + ".yaml";
}

// One file per container, so that an ADD or DEL writes one small record whatever the number
// of pods on the node.
void NodeReconciler::savePod(const PodRecord& pod) const {
  YAML::Node p;
  p["containerId"] = pod.ref.containerId;
  p["network"] = pod.ref.network;
  p["podIfname"] = pod.ref.podIfname;
  p["namespace"] = pod.ref.ns;
  p["name"] = pod.ref.name;
  p["hostIfname"] = pod.ref.hostIfname;
  p["hostIfindex"] = pod.ref.hostIfindex;
  for (const auto& [hook, link] : pod.links)
    p["links"][std::string(dataplane::hookName(hook))] = link.instanceKey;
  // Not durable, as the state files: a pod ADD does not wait for the disk.
  if (auto w = writeFileAtomic(podRecordPath(attachmentKey(pod.ref)), YAML::Dump(p) + "\n",
                               {.durable = false});
      !w)
    log::error("cannot write a pod record",
               {{"pod", pod.ref.ns + "/" + pod.ref.name}, {"error", w.error().message()}});
}

void NodeReconciler::forgetPod(const std::string& key) const {
  std::error_code ec;
  fs::remove(podRecordPath(key), ec);
}

void NodeReconciler::loadPods() {
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(options_.stateDir + "/pods", ec)) {
    if (file.path().extension() != ".yaml")
      continue; // a .tmp left by a crash mid-write: the record before it still stands
    PodRecord pod;
    std::map<std::string, std::string> links; // hook -> instance key
    try {
      YAML::Node p = YAML::LoadFile(file.path().string());
      pod.ref = PodRef{p["containerId"].as<std::string>(), p["namespace"].as<std::string>(),
                       p["name"].as<std::string>(),        p["hostIfname"].as<std::string>(),
                       p["hostIfindex"].as<int>(),         p["podIfname"].as<std::string>(),
                       p["network"].as<std::string>()};
      for (const auto& l : p["links"])
        links[l.first.as<std::string>()] = l.second.as<std::string>();
      if (file.path().stem().string() != attachmentKey(pod.ref))
        throw YAML::Exception(YAML::Mark::null_mark(), "the record does not match its file name");
    } catch (const YAML::Exception& e) {
      // CNI CHECK reports such a pod as not attached; its pins stay until GC or DEL.
      log::warning("pod record ignored", {{"file", file.path().string()}, {"error", e.what()}});
      continue;
    }
    for (const auto& [hookName, key] : links) {
      auto hook = dataplane::parseHook(hookName);
      auto inst = instances_.find(key);
      if (!hook || inst == instances_.end())
        continue;
      auto adopted = dataplane::Attachment::adopt(inst->second->chain.rootId(), pod.ref.hostIfindex,
                                                  *hook, podLinkPin(pod, *hook), options_.attach);
      if (adopted && adopted->has_value())
        pod.links[*hook] = PodLink{inst->first, std::move(**adopted)};
    }
    pods_[attachmentKey(pod.ref)] = std::move(pod);
  }
}

NodeStatus
NodeReconciler::reconcile(const NodeSpec& spec, const PodSelector& selectsPod,
                          const std::vector<std::pair<std::string, std::string>>& expectedPods,
                          ReconcileScope scope, const std::optional<Interfaces>& known) {
  std::lock_guard lock(mu_);
  scope_ = scope;
  // A chain whose new declaration does not parse keeps running its last good one.
  NodeSpec effective = spec;
  std::map<std::string, InvalidChain> invalid;
  auto now = Clock::now();
  std::map<std::string, Unavailable> unavailable;
  for (const auto& bad : spec.invalid) {
    auto named = [&](const ChainDecl& c) { return c.name == bad.name; };
    // The last good declaration: the one the spec gives with it, else the one that ran.
    const ChainDecl* previous = nullptr;
    if (auto given = std::find_if(spec.chains.begin(), spec.chains.end(), named);
        given != spec.chains.end())
      previous = &*given;
    else if (auto ran = std::find_if(spec_.chains.begin(), spec_.chains.end(), named);
             ran != spec_.chains.end())
      previous = &effective.chains.emplace_back(*ran);
    const char* reason = reasonName(bad.kind);
    bool retryDue = false;
    if (bad.kind == ErrorKind::RevisionUnavailable) {
      Unavailable& retry = unavailable[bad.name];
      if (auto known = unavailable_.find(bad.name);
          known != unavailable_.end() && known->second.revision == bad.revision) {
        retry = known->second;
        retryDue = now >= retry.notBefore;
        if (retryDue) {
          retry.backoff = std::min(retry.backoff * 2, kMaxRetry);
          retry.notBefore = now + retry.backoff;
        }
      } else {
        retry = Unavailable{bad.revision, now + kFirstRetry, kFirstRetry};
      }
    }
    if (auto known = invalid_.find(bad.name);
        known == invalid_.end() || !(known->second == bad) || retryDue) {
      log::error("chain not applied; its previous generation keeps running, if any",
                 {{"chain", bad.name},
                  {"generation", bad.generation},
                  {"revision", bad.revision},
                  {"reason", reason},
                  {"message", bad.message},
                  {"running", previous ? previous->generation : 0}});
      if (metrics_)
        metrics_->countError(bad.name, reason);
    }
    invalid[bad.name] = bad;
  }
  unavailable_ = std::move(unavailable);
  effective.invalid.clear();
  for (const auto& c : spec_.chains)
    if (std::none_of(effective.chains.begin(), effective.chains.end(),
                     [&](const ChainDecl& e) { return e.name == c.name; }))
      log::info("removing chain: no longer in the node's config",
                {{"chain", c.name}, {"generation", c.generation}});
  invalid_ = std::move(invalid);
  spec_ = std::move(effective);
  selectsPod_ = selectsPod;
  applied_ = true;
  Interfaces interfaces = known ? *known : listInterfaces();

  // 1. Which chains run on which instance, in (priority, name) order: host interfaces by
  // name, pods by the chain sets of the pods attached here.
  std::vector<const ChainDecl*> ordered;
  for (const auto& c : spec_.chains)
    ordered.push_back(&c);
  ordered = inOrder(ordered);
  struct Desired {
    int ifindex = 0;
    std::string ifname;
    dataplane::Hook hook = dataplane::Hook::Xdp;
    std::vector<const ChainDecl*> chains;
  };
  std::map<std::string, Desired> desired;
  for (const ChainDecl* c : ordered) {
    if (c->forPods())
      continue;
    for (const auto& [name, index] : interfaces)
      if (c->interfaces->matches(name)) {
        auto& d = desired[instanceKey(index, c->hook)];
        d.ifindex = index;
        d.ifname = name;
        d.hook = c->hook;
        d.chains.push_back(c);
      }
  }
  std::erase_if(pods_, [&](auto& entry) {
    // A veth that is gone took its attachments with it: the pod was deleted meanwhile.
    auto it = interfaces.find(entry.second.ref.hostIfname);
    bool gone = it == interfaces.end() || it->second != entry.second.ref.hostIfindex;
    if (gone)
      forgetPod(entry.first);
    return gone;
  });
  std::map<std::string, std::map<dataplane::Hook, std::string>> podTargets;
  for (const auto& [ns, name] : expectedPods)
    for (auto& [hook, chains] : podChains(PodRef{"", ns, name, "", 0}))
      desired[podInstanceKey(hook, chains)] = Desired{0, "", hook, chains};
  for (auto& [id, pod] : pods_) {
    for (auto& [hook, chains] : podChains(pod.ref)) {
      std::string key = podInstanceKey(hook, chains);
      desired[key] = Desired{0, "", hook, chains};
      podTargets[id][hook] = key;
    }
  }

  // 2. Resolve each chain's new programs once (packages fetched and verified), unless its
  // generation failed lately and the spec has not changed since.
  Resolved resolved;
  std::map<std::string, ApplyFailure> failures; // by chain: the first failure of this pass
  std::map<std::string, std::string> digests;
  for (const ChainDecl* c : ordered) {
    digests[c->name] = specDigest(*c);
    auto retry = retries_.find(c->name);
    if (retry != retries_.end() && retry->second.generation == c->generation &&
        retry->second.specDigest == digests[c->name] && now < retry->second.notBefore) {
      failures[c->name] = retry->second.failure;
      resolved[c->name] = std::nullopt;
      continue;
    }
    // A chain's declaration resolves to the same programs as long as it is unchanged:
    // packages are content-addressed.
    if (auto cached = resolvedCache_.find(c->name);
        cached != resolvedCache_.end() && cached->second.first == digests[c->name]) {
      resolved[c->name] = cached->second.second;
      continue;
    }
    auto r = resolver_.resolve(*c);
    if (r) {
      resolvedCache_[c->name] = {digests[c->name], *r};
      resolved[c->name] = std::move(*r);
    } else {
      failures[c->name] = ApplyFailure{r.error().reason, r.error().message};
      resolved[c->name] = std::nullopt;
    }
  }

  // 3. Every instance moves to its chains' new programs, then host instances are attached.
  std::map<std::string, double> applySeconds;
  for (auto& [key, d] : desired) {
    if (d.ifindex != 0 && !instances_.contains(key) &&
        std::none_of(d.chains.begin(), d.chains.end(), [&](const ChainDecl* c) {
          auto r = resolved.find(c->name);
          return r != resolved.end() && r->second.has_value();
        }))
      continue; // nothing to load here yet: no root either
    std::string dir = options_.bpffsRoot + "/" + std::to_string(netnsInode_) + "/" + key;
    auto instance = instanceAt(key, dir, d.ifindex, d.ifname, d.hook);
    if (!instance) {
      for (const ChainDecl* c : d.chains)
        failures.try_emplace(c->name,
                             ApplyFailure{"AttachFailed", (d.ifname.empty() ? key : d.ifname) +
                                                              ": " + instance.error().message()});
      continue;
    }
    Instance& inst = **instance;
    applyChains(inst, d.chains, resolved, failures, &applySeconds);
    if (d.ifindex == 0)
      continue;
    if (inst.applied.empty()) {
      removeInstance(key); // every chain failed its first apply here: no empty root
      continue;
    }
    if (inst.attachment) {
      auto attached = inst.attachment->attached();
      if (!attached || *attached)
        continue;
      inst.attachment.reset(); // detached behind our back: attach again
    }
    auto adopted = dataplane::Attachment::adopt(inst.chain.rootId(), inst.ifindex, inst.hook,
                                                inst.dir + "/link", options_.attach);
    if (adopted && adopted->has_value()) {
      inst.attachment = std::move(**adopted);
      continue;
    }
    // A TCX root goes first among the hook's programs, unless every chain there asks for last.
    dataplane::AttachOptions options = options_.attach;
    options.tcxLast = std::all_of(d.chains.begin(), d.chains.end(),
                                  [](const ChainDecl* c) { return c->placeLast; });
    auto attached = dataplane::Attachment::attach(inst.chain.rootFd(), inst.ifindex, inst.hook,
                                                  inst.dir + "/link", options);
    if (attached) {
      inst.attachment = std::move(*attached);
      log::info("attached chain root", {{"interface", d.ifname},
                                        {"hook", dataplane::hookName(d.hook)},
                                        {"rootProgramId", inst.chain.rootId()}});
    } else
      for (const ChainDecl* c : d.chains)
        failures.try_emplace(c->name,
                             ApplyFailure{"AttachFailed", std::string(dataplane::hookName(d.hook)) +
                                                              " on " + d.ifname + ": " +
                                                              attached.error().message()});
  }

  // What runs before each interface's TCX root (another tool's program put first since, or a
  // chain that asked to go last): logged when it changes, and in the chains' status.
  for (auto& [key, inst] : instances_) {
    if (!inst->attachment || inst->ifindex == 0)
      continue;
    auto ahead = inst->attachment->programsBefore();
    if (!ahead || *ahead == inst->ahead)
      continue;
    inst->ahead = std::move(*ahead);
    if (!inst->ahead.empty())
      log::warning("other programs run before the chain root",
                   {{"interface", inst->ifname},
                    {"hook", dataplane::hookName(inst->hook)},
                    {"detail", aheadMessage(inst->ahead)}});
  }

  // 4. Pods follow their chain sets: switch to the new set's instance, or detach.
  for (auto& [id, pod] : pods_) {
    const auto& targets = podTargets[id];
    std::map<dataplane::Hook, std::string> before;
    for (const auto& [hook, link] : pod.links)
      before[hook] = link.instanceKey;
    std::vector<dataplane::Hook> hooks;
    for (const auto& [hook, link] : pod.links)
      hooks.push_back(hook);
    for (dataplane::Hook hook : hooks)
      if (!targets.contains(hook))
        unlinkPod(pod, hook);
    for (const auto& [hook, key] : targets)
      if (auto linked = linkPod(pod, hook, key, scope == ReconcileScope::Full); !linked)
        for (const ChainDecl* c : desired[key].chains)
          failures.try_emplace(c->name, ApplyFailure{"AttachFailed", linked.error().message()});
    std::map<dataplane::Hook, std::string> after;
    for (const auto& [hook, link] : pod.links)
      after[hook] = link.instanceKey;
    if (after != before)
      savePod(pod);
  }

  // 5. Instances no chain or pod wants any more, or whose interface is gone.
  std::vector<std::string> stale;
  for (const auto& [key, inst] : instances_)
    if (!desired.contains(key))
      stale.push_back(key);
  for (const auto& key : stale)
    removeInstance(key);

  // 6. Retries and metrics, then the status.
  for (const auto& c : spec_.chains) {
    if (auto f = failures.find(c.name); f != failures.end()) {
      RetryState& retry = retries_[c.name];
      bool sameAttempt = retry.generation == c.generation && retry.specDigest == digests[c.name];
      if (!sameAttempt || now >= retry.notBefore) {
        retry.backoff = sameAttempt ? std::min(retry.backoff * 2, kMaxRetry) : kFirstRetry;
        retry.generation = c.generation;
        retry.specDigest = digests[c.name];
        retry.notBefore = now + retry.backoff;
        retry.failure = f->second;
        log::error("chain failed", {{"chain", c.name},
                                    {"generation", c.generation},
                                    {"reason", f->second.reason},
                                    {"message", f->second.message},
                                    {"retryInSeconds", retry.backoff.count()}});
        if (metrics_)
          metrics_->countError(c.name, f->second.reason);
      }
    } else {
      retries_.erase(c.name);
    }
    if (metrics_ && applySeconds.contains(c.name))
      metrics_->observeApply(c.name, applySeconds[c.name]);
  }
  std::erase_if(retries_, [&](const auto& entry) {
    return std::none_of(spec_.chains.begin(), spec_.chains.end(),
                        [&](const ChainDecl& c) { return c.name == entry.first; });
  });
  std::erase_if(resolvedCache_, [&](const auto& entry) { return !digests.contains(entry.first); });
  std::erase_if(uncarried_, [&](const auto& entry) { return !digests.contains(entry.first); });
  failures_ = std::move(failures);
  publishMetrics();
  if (scope == ReconcileScope::Full)
    collectPackages();
  return buildStatus();
}

void NodeReconciler::collectPackages() {
  std::set<std::string> inUse;
  for (const auto& c : spec_.chains)
    for (const auto& p : c.programs)
      inUse.insert(p.sha256);
  // Running programs' objects are <cache>/<digest>/tree/...: their generation may be the one a
  // failed target falls back on.
  std::string prefix = resolver_.cache().dir() + "/";
  for (const auto& [key, inst] : instances_)
    for (const auto& [chain, applied] : inst->applied)
      for (const auto& p : applied.programs)
        if (p.objectPath.rfind(prefix, 0) == 0)
          inUse.insert(p.objectPath.substr(prefix.size(), 64));
  if (inUse == packagesInUse_)
    return;
  packagesInUse_ = inUse;
  if (size_t removed = resolver_.cache().collectGarbage(inUse); removed > 0)
    log::info("removed cached packages that no running or configured chain uses",
              {{"count", removed}});
}

NodeStatus NodeReconciler::status() const {
  std::lock_guard lock(mu_);
  return buildStatus();
}

NodeStatus NodeReconciler::buildStatus() const {
  NodeStatus status;
  for (const auto& c : spec_.chains) {
    ChainStatus s;
    s.name = c.name;
    s.generation = c.generation;
    auto attachmentOf = [&](const Instance& inst) {
      AttachmentStatus a;
      a.interface = inst.ifname;
      a.hook = inst.hook;
      a.programIds.push_back(inst.chain.rootId());
      for (const auto& p : inst.chain.programs())
        if (p.id.rfind(chainKey(c.name) + "/", 0) == 0)
          a.programIds.push_back(p.programId);
      return a;
    };
    s.revision = c.revision;
    for (const auto& [key, inst] : instances_)
      if (auto running = inst->applied.find(c.name);
          running != inst->applied.end() &&
          (s.runningGeneration == 0 || running->second.generation < s.runningGeneration)) {
        s.runningGeneration = running->second.generation;
        s.runningRevision = running->second.revision;
      }
    if (c.forPods()) {
      for (const auto& [id, pod] : pods_)
        for (const auto& [hook, link] : pod.links) {
          auto inst = instances_.find(link.instanceKey);
          if (inst == instances_.end() || !inst->second->applied.contains(c.name))
            continue;
          AttachmentStatus a = attachmentOf(*inst->second);
          a.interface = pod.ref.hostIfname;
          a.pod = pod.ref.ns + "/" + pod.ref.name;
          s.attachments.push_back(std::move(a));
        }
    } else {
      for (const auto& [key, inst] : instances_)
        if (!isPodKey(key) && inst->applied.contains(c.name))
          s.attachments.push_back(attachmentOf(*inst));
    }
    if (auto bad = invalid_.find(c.name); bad != invalid_.end()) {
      s.generation = bad->second.generation;
      s.revision = bad->second.revision;
      s.phase = "Failed";
      s.reason = reasonName(bad->second.kind);
      s.message = bad->second.message;
    } else if (auto f = failures_.find(c.name); f != failures_.end()) {
      s.phase = "Failed";
      s.reason = f->second.reason;
      s.message = f->second.message;
    } else if (s.runningGeneration == 0) {
      // No instance runs the chain and none failed: nothing on this node to attach it to.
      s.phase = "Idle";
      s.reason = "NothingToAttach";
      s.message = c.forPods() ? "no pod on this node is selected by the chain"
                              : "no interface on this node matches the chain";
    } else {
      s.phase = "Ready";
      if (auto m = monitorProblems_.find(c.name); m != monitorProblems_.end())
        s.message = m->second;
      if (auto u = uncarried_.find(c.name); u != uncarried_.end() && !u->second.maps.empty() &&
                                            u->second.specDigest == specDigest(c)) {
        std::string maps;
        for (const auto& line : u->second.maps)
          maps += (maps.empty() ? "" : ", ") + line;
        s.message += (s.message.empty() ? "" : "; ") +
                     ("state not carried to the new version (starts empty): " + maps);
      }
    }
    if (!c.forPods())
      for (const auto& [key, inst] : instances_)
        if (!isPodKey(key) && inst->applied.contains(c.name) && !inst->ahead.empty())
          s.message += (s.message.empty() ? "" : "; ") + std::string(dataplane::hookName(c.hook)) +
                       " on " + inst->ifname + ": " + aheadMessage(inst->ahead);
    status.chains.push_back(std::move(s));
  }
  // Chains that never ran a target: nothing of theirs runs.
  for (const auto& entry : invalid_) {
    const InvalidChain& bad = entry.second;
    if (std::none_of(spec_.chains.begin(), spec_.chains.end(),
                     [&](const ChainDecl& c) { return c.name == bad.name; }))
      status.chains.push_back(ChainStatus{bad.name,
                                          bad.generation,
                                          0,
                                          "Failed",
                                          reasonName(bad.kind),
                                          bad.message,
                                          {},
                                          bad.revision,
                                          ""});
  }
  return status;
}

Result<std::vector<PodChain>, ApplyFailure> NodeReconciler::attachPod(const PodRef& ref) {
  // The id names the pod's record and pins: nothing but a CNI container id may pass.
  if (auto why = agent::invalidContainerId(ref.containerId))
    return ApplyFailure{"InvalidRequest", "container id \"" + ref.containerId + "\" " + *why};
  if (ref.containerId.size() > 256)
    return ApplyFailure{"InvalidRequest", "container id \"" + ref.containerId.substr(0, 64) +
                                              "...\" is longer than 256 characters"};
  std::lock_guard lock(mu_);
  if (ref.hostIfindex <= 0)
    return ApplyFailure{"InvalidRequest",
                        "no host-side interface for container " + ref.containerId};
  auto [it, inserted] = pods_.try_emplace(attachmentKey(ref), PodRecord{ref, {}});
  PodRecord& pod = it->second;
  if (!inserted && pod.ref.hostIfindex != ref.hostIfindex) {
    for (auto hook : {dataplane::Hook::Xdp, dataplane::Hook::TcIngress, dataplane::Hook::TcEgress})
      unlinkPod(pod, hook);
    pod.ref = ref;
  }
  std::vector<PodChain> result;
  bool loaded = false;
  for (auto& [hook, chains] : podChains(ref)) {
    std::string key = podInstanceKey(hook, chains);
    if (!instances_.contains(key)) {
      loaded = true;
      // The first pod of this chain set on the node: load the set now (later pods only attach).
      Resolved resolved;
      std::map<std::string, ApplyFailure> failures;
      for (const ChainDecl* c : chains) {
        auto r = resolver_.resolve(*c);
        if (!r)
          return ApplyFailure{r.error().reason, "chain " + c->name + ": " + r.error().message};
        resolved[c->name] = std::move(*r);
      }
      std::string dir = options_.bpffsRoot + "/" + std::to_string(netnsInode_) + "/" + key;
      auto inst = instanceAt(key, dir, 0, "", hook);
      if (!inst)
        return ApplyFailure{"AttachFailed", inst.error().message()};
      scope_ = ReconcileScope::Full;
      applyChains(**inst, chains, resolved, failures, nullptr);
      if (!failures.empty()) {
        auto& [chain, failure] = *failures.begin();
        removeInstance(key);
        return ApplyFailure{failure.reason, "chain " + chain + ": " + failure.message};
      }
    }
    if (auto linked = linkPod(pod, hook, key, true); !linked)
      return ApplyFailure{"AttachFailed", linked.error().message()};
    const Instance& inst = *instances_.at(key);
    for (const ChainDecl* c : chains) {
      auto applied = inst.applied.find(c->name);
      result.push_back(PodChain{c->name, hook,
                                applied == inst.applied.end() ? 0 : applied->second.generation,
                                inst.chain.rootId(), ref.hostIfname});
    }
  }
  savePod(pod);
  if (loaded)
    publishMetrics();
  return result;
}

void NodeReconciler::detachPod(const PodRef& ref) {
  std::lock_guard lock(mu_);
  std::string key = attachmentKey(ref);
  auto it = pods_.find(key);
  if (it == pods_.end())
    return;
  for (auto hook : {dataplane::Hook::Xdp, dataplane::Hook::TcIngress, dataplane::Hook::TcEgress})
    unlinkPod(it->second, hook);
  pods_.erase(it);
  forgetPod(key);
}

Result<void, ApplyFailure> NodeReconciler::checkPod(const PodRef& ref) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(attachmentKey(ref));
  if (it == pods_.end())
    return ApplyFailure{"NotAttached", "container " + ref.containerId + " (" + ref.podIfname +
                                           " in network " + ref.network +
                                           ") has no chains attached"};
  const PodRecord& pod = it->second;
  for (const auto& [hook, chains] : podChains(pod.ref)) {
    auto link = pod.links.find(hook);
    auto inst =
        link == pod.links.end() ? instances_.end() : instances_.find(link->second.instanceKey);
    std::string where = std::string(dataplane::hookName(hook)) + " on " + pod.ref.hostIfname;
    if (inst == instances_.end())
      return ApplyFailure{"NotAttached", where + ": the pod's chains are not attached"};
    auto attached =
        link->second.attachment ? link->second.attachment->attached() : Result<bool>(false);
    if (!attached || !*attached)
      return ApplyFailure{"NotAttached", where + ": the chain's root is no longer attached"};
  }
  return {};
}

std::vector<std::string>
NodeReconciler::collectPods(const std::string& network,
                            const std::set<std::pair<std::string, std::string>>& valid) {
  std::lock_guard lock(mu_);
  std::vector<std::string> removed;
  for (auto it = pods_.begin(); it != pods_.end();) {
    const PodRef& ref = it->second.ref;
    // Another network's attachments are that network's GC to judge.
    if (ref.network != network || valid.contains({ref.containerId, ref.podIfname})) {
      ++it;
      continue;
    }
    for (auto hook : {dataplane::Hook::Xdp, dataplane::Hook::TcIngress, dataplane::Hook::TcEgress})
      unlinkPod(it->second, hook);
    removed.push_back(ref.containerId);
    forgetPod(it->first);
    it = pods_.erase(it);
  }
  return removed;
}

bool NodeReconciler::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

std::optional<Clock::time_point> NodeReconciler::nextRetry() const {
  std::lock_guard lock(mu_);
  std::optional<Clock::time_point> next;
  for (const auto& [name, retry] : retries_)
    if (!next || retry.notBefore < *next)
      next = retry.notBefore;
  for (const auto& [name, retry] : unavailable_)
    if (!next || retry.notBefore < *next)
      next = retry.notBefore;
  return next;
}

void NodeReconciler::detachAll() {
  std::lock_guard lock(mu_);
  for (auto& [id, pod] : pods_) {
    for (auto hook : {dataplane::Hook::Xdp, dataplane::Hook::TcIngress, dataplane::Hook::TcEgress})
      unlinkPod(pod, hook);
    forgetPod(id);
  }
  pods_.clear();
  std::vector<std::string> keys;
  for (const auto& [key, inst] : instances_)
    keys.push_back(key);
  for (const auto& key : keys)
    removeInstance(key);
  publishMetrics();
}

namespace {

// chain.h's stats map of a running program, by its naming convention (a map called *_stats).
std::optional<FD> openStatsMap(const dataplane::Chain& chain, const std::string& programId,
                               const std::string& dir) {
  std::error_code ec;
  for (const auto& pin : fs::directory_iterator(dir + "/maps", ec)) {
    std::string name = pin.path().filename().string();
    if (name.size() > 6 && name.ends_with("_stats")) {
      auto fd = chain.openMap(programId, name);
      if (fd && AgentMetrics::isStatsMap(fd->get()))
        return std::move(*fd);
    }
  }
  return std::nullopt;
}

std::string attachModeName(const std::optional<dataplane::Attachment>& attachment) {
  if (!attachment)
    return "not attached";
  bool xdp = attachment->hook() == dataplane::Hook::Xdp;
  if (attachment->mode() == dataplane::AttachMode::Link)
    return xdp ? "xdp link" : "tcx";
  return xdp ? "xdp netlink" : "cls_bpf";
}

} // namespace

std::vector<HookInspection> NodeReconciler::inspect() const {
  std::lock_guard lock(mu_);
  auto inspectInstance = [&](const Instance& inst) {
    HookInspection h;
    h.interface = inst.ifname.empty() ? inst.key : inst.ifname;
    h.hook = inst.hook;
    h.attachMode = attachModeName(inst.attachment);
    h.rootProgramId = inst.chain.rootId();
    std::string hook(dataplane::hookName(inst.hook));
    for (const auto& p : inst.chain.programs()) {
      ProgramInspection program;
      program.programId = p.programId;
      program.program = p.id;
      for (const auto& [chain, applied] : inst.applied)
        if (p.id.rfind(chainKey(chain) + "/", 0) == 0) {
          program.chain = chain;
          program.program = p.id.substr(chainKey(chain).size() + 1);
          program.generation = applied.generation;
        }
      if (auto stats = openStatsMap(inst.chain, p.id, p.dir)) {
        program.hasStats = true;
        program.verdicts = AgentMetrics::verdictCounts(stats->get(), hook);
      }
      h.programs.push_back(std::move(program));
    }
    return h;
  };
  std::vector<HookInspection> hooks;
  std::set<std::string> linked; // pods instances some pod is linked to
  for (const auto& [id, pod] : pods_)
    for (const auto& [hook, link] : pod.links)
      if (auto inst = instances_.find(link.instanceKey); inst != instances_.end()) {
        HookInspection h = inspectInstance(*inst->second);
        h.interface = pod.ref.hostIfname;
        h.pod = pod.ref.ns + "/" + pod.ref.name;
        h.attachMode = attachModeName(link.attachment);
        hooks.push_back(std::move(h));
        linked.insert(link.instanceKey);
      }
  for (const auto& [key, inst] : instances_)
    if (!isPodKey(key) || !linked.contains(key))
      hooks.push_back(inspectInstance(*inst));
  std::ranges::stable_sort(hooks, [](const HookInspection& a, const HookInspection& b) {
    return std::tie(a.interface, a.hook) < std::tie(b.interface, b.hook);
  });
  return hooks;
}

void NodeReconciler::publishMetrics() {
  if (!metrics_)
    return;
  monitorProblems_.clear();
  std::vector<ExportedAttachment> exported;
  for (const auto& [key, inst] : instances_) {
    ExportedAttachment e;
    e.interface = inst->ifname.empty() ? inst->key : inst->ifname; // pods/<hook>/<set>
    e.hook = std::string(dataplane::hookName(inst->hook));
    e.root = std::make_shared<FD>(dup(inst->chain.rootFd()));
    std::map<std::string, std::string> dirs; // running program id -> instance dir
    for (const auto& p : inst->chain.programs())
      dirs[p.id] = p.dir;
    for (const auto& [chain, applied] : inst->applied) {
      for (size_t i = 0; i < applied.programs.size(); ++i) {
        const auto& p = applied.programs[i];
        if (!dirs.contains(p.id))
          continue;
        ExportedProgram program;
        program.chain = chain;
        program.program = p.id.substr(chainKey(chain).size() + 1);
        if (auto stats = openStatsMap(inst->chain, p.id, dirs[p.id]))
          program.stats = std::make_shared<FD>(std::move(*stats));
        if (i < applied.monitors.size()) {
          for (const auto& decl : applied.monitors[i]) {
            ExportedMonitor m{decl, {}, nullptr, {}, ""};
            auto fd = inst->chain.openMap(p.id, decl.map);
            auto key = fd ? AgentMetrics::encodeKey(fd->get(), decl.key)
                          : Result<std::vector<uint8_t>>(fd.error());
            auto fields = fd ? AgentMetrics::valueFields(fd->get())
                             : Result<std::vector<ValueField>>(fd.error());
            if (fd && key && fields) {
              m.map = std::make_shared<FD>(std::move(*fd));
              m.key = std::move(*key);
              m.fields = std::move(*fields);
            } else {
              m.error = !key ? key.error().message() : fields.error().message();
              // A monitor map that cannot be read does not fail the chain: the status says so,
              // and the log and the error counter once.
              std::string line = "monitorMaps of " + p.id + ": map " + decl.map + ": " + m.error;
              monitorProblems_.try_emplace(chain, line + "; not exported");
              if (monitorErrors_.insert(line).second) {
                log::warning("monitor map not exported", {{"chain", chain}, {"problem", line}});
                metrics_->countError(chain, "MonitorMapInvalid");
              }
            }
            program.monitors.push_back(std::move(m));
          }
        }
        e.programs.push_back(std::move(program));
      }
    }
    exported.push_back(std::move(e));
  }
  metrics_->publish(std::move(exported));
}

} // namespace bpfchain::agent
