#include "node-agent/node_reconciler.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <net/if.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "node-agent/agent_metrics.h"

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

// Interfaces of the calling thread's network namespace, by name.
std::map<std::string, int> listInterfaces() {
  std::map<std::string, int> result;
  if (struct if_nameindex* names = if_nameindex()) {
    for (auto* n = names; n->if_index != 0; ++n)
      result[n->if_name] = static_cast<int>(n->if_index);
    if_freenameindex(names);
  }
  return result;
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
    out << YAML::EndMap << YAML::BeginSeq;
    for (const auto& a : p.mapArgs) {
      out << a.map << (a.mode == btf::MapArgMode::Replace ? "replace" : "merge");
      for (const auto& e : a.entries)
        out << e.key << e.value;
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
  for (const auto& a : p.mapArgs) {
    YAML::Node arg;
    arg["map"] = a.map;
    arg["mode"] = a.mode == btf::MapArgMode::Replace ? "replace" : "merge";
    arg["entries"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& e : a.entries) {
      YAML::Node entry;
      entry["key"] = e.key;
      entry["value"] = e.value;
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
  for (const auto& a : n["mapArgs"]) {
    dataplane::MapArgSpec arg;
    arg.map = a["map"].as<std::string>();
    arg.mode =
        a["mode"].as<std::string>() == "merge" ? btf::MapArgMode::Merge : btf::MapArgMode::Replace;
    for (const auto& e : a["entries"])
      arg.entries.push_back(btf::MapArgEntry{YAML::Clone(e["key"]), YAML::Clone(e["value"])});
    p.mapArgs.push_back(std::move(arg));
  }
  return p;
}

bool sameSpecs(const std::vector<dataplane::ProgramSpec>& a,
               const std::vector<dataplane::ProgramSpec>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (YAML::Dump(programToYaml(a[i])) != YAML::Dump(programToYaml(b[i])))
      return false;
  return true;
}

std::string instanceKey(int ifindex, dataplane::Hook hook) {
  return std::to_string(ifindex) + "/" + std::string(dataplane::hookName(hook));
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
  fs::create_directories(r->options_.stateDir + "/instances", ec);
  if (ec)
    return Error(ec.value(), "create " + r->options_.stateDir + "/instances: " + ec.message());
  if (auto adopted = r->adoptPinned(); !adopted)
    return std::move(adopted).error();
  r->publishMetrics();
  return r;
}

Result<void> NodeReconciler::adoptPinned() {
  std::string root = options_.bpffsRoot + "/" + std::to_string(netnsInode_);
  std::error_code ec;
  if (!fs::exists(root, ec))
    return {};
  auto interfaces = listInterfaces();
  for (const auto& ifdir : fs::directory_iterator(root, ec)) {
    int ifindex = std::atoi(ifdir.path().filename().c_str());
    for (const auto& hookdir : fs::directory_iterator(ifdir.path(), ec)) {
      auto hook = dataplane::parseHook(hookdir.path().filename().string());
      if (ifindex <= 0 || !hook)
        continue;
      std::string ifname;
      for (const auto& [name, index] : interfaces)
        if (index == ifindex)
          ifname = name;
      auto chain = dataplane::Chain::open(hookdir.path().string(), *hook);
      if (!chain)
        return std::move(chain).error().context("adopt " + hookdir.path().string());
      auto instance = std::make_unique<Instance>(Instance{instanceKey(ifindex, *hook),
                                                          hookdir.path().string(),
                                                          ifindex,
                                                          ifname,
                                                          *hook,
                                                          std::move(*chain),
                                                          {},
                                                          {}});
      if (!ifname.empty()) {
        auto attachment = dataplane::Attachment::adopt(instance->chain.rootId(), ifindex, *hook,
                                                       instance->dir + "/link", options_.attach);
        if (attachment && attachment->has_value())
          instance->attachment = std::move(**attachment);
      }
      loadState(*instance);
      instances_[instance->key] = std::move(instance);
    }
  }
  return {};
}

void NodeReconciler::loadState(Instance& instance) const {
  std::string path = options_.stateDir + "/instances/" + std::to_string(netnsInode_) + "-" +
                     std::to_string(instance.ifindex) + "-" +
                     std::string(dataplane::hookName(instance.hook)) + ".yaml";
  try {
    YAML::Node doc = YAML::LoadFile(path);
    // Only chains whose programs all still run as recorded are taken: the kernel is the truth.
    std::set<std::string> running;
    for (const auto& p : instance.chain.programs())
      running.insert(p.id);
    for (const auto& c : doc["chains"]) {
      AppliedChain applied;
      applied.generation = c["generation"].as<int64_t>();
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
  std::string base = options_.stateDir + "/instances/" + std::to_string(netnsInode_) + "-" +
                     std::to_string(instance.ifindex) + "-" +
                     std::string(dataplane::hookName(instance.hook)) + ".yaml";
  std::string tmp = base + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << YAML::Dump(doc) << "\n";
    out.flush();
    if (!out)
      return systemError(errno, "write " + tmp);
  }
  if (std::rename(tmp.c_str(), base.c_str()) != 0)
    return systemError(errno, "rename " + tmp);
  return {};
}

Result<NodeReconciler::Instance*>
NodeReconciler::instanceFor(int ifindex, const std::string& ifname, dataplane::Hook hook) {
  std::string key = instanceKey(ifindex, hook);
  if (auto it = instances_.find(key); it != instances_.end()) {
    it->second->ifname = ifname;
    return it->second.get();
  }
  std::string dir = options_.bpffsRoot + "/" + std::to_string(netnsInode_) + "/" +
                    std::to_string(ifindex) + "/" + std::string(dataplane::hookName(hook));
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
  if (instance.attachment)
    (void)instance.attachment->detach();
  else if (!instance.ifname.empty()) {
    // Adopted pins whose attachment we did not recognise: detach whatever runs our root.
    auto adopted =
        dataplane::Attachment::adopt(instance.chain.rootId(), instance.ifindex, instance.hook,
                                     instance.dir + "/link", options_.attach);
    if (adopted && adopted->has_value())
      (void)(*adopted)->detach();
  }
  std::error_code ec;
  fs::remove(instance.dir + "/link", ec);
  (void)instance.chain.destroy();
  fs::remove(instance.dir, ec);
  fs::remove(fs::path(instance.dir).parent_path(), ec);               // the ifindex dir, once empty
  fs::remove(fs::path(instance.dir).parent_path().parent_path(), ec); // the netns dir, too
  fs::remove(options_.stateDir + "/instances/" + std::to_string(netnsInode_) + "-" +
                 std::to_string(instance.ifindex) + "-" +
                 std::string(dataplane::hookName(instance.hook)) + ".yaml",
             ec);
  instances_.erase(it);
}

NodeStatus NodeReconciler::reconcile(const NodeSpec& spec) {
  auto interfaces = listInterfaces();
  auto now = Clock::now();

  // 1. Which chains run on which instance, in (priority, name) order.
  std::vector<const ChainDecl*> ordered;
  for (const auto& c : spec.chains)
    if (!c.forPods())
      ordered.push_back(&c);
  std::sort(ordered.begin(), ordered.end(), [](const ChainDecl* a, const ChainDecl* b) {
    return std::tie(a->priority, a->name) < std::tie(b->priority, b->name);
  });
  struct Desired {
    int ifindex;
    std::string ifname;
    dataplane::Hook hook;
    std::vector<const ChainDecl*> chains;
  };
  std::map<std::string, Desired> desired;
  for (const ChainDecl* c : ordered)
    for (const auto& [name, index] : interfaces)
      if (c->interfaces->matches(name)) {
        auto& d = desired[instanceKey(index, c->hook)];
        d.ifindex = index;
        d.ifname = name;
        d.hook = c->hook;
        d.chains.push_back(c);
      }

  // 2. Resolve each chain's new programs once (packages fetched and verified), unless its
  // generation failed lately and the spec has not changed since.
  std::map<std::string, std::optional<std::vector<dataplane::ProgramSpec>>> resolved;
  std::map<std::string, Failure> failures; // by chain: the first failure of this pass
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
    auto r = resolver_.resolve(*c);
    if (r) {
      resolved[c->name] = std::move(*r);
    } else {
      failures[c->name] = Failure{r.error().reason, r.error().message};
      resolved[c->name] = std::nullopt;
    }
  }

  // 3. Per instance: drop chains that left it, then move each chain to its new programs, one
  // make-before-break step per chain so that a failure stays the failing chain's.
  std::map<std::string, double> applySeconds;
  for (auto& [key, d] : desired) {
    auto instance = instanceFor(d.ifindex, d.ifname, d.hook);
    if (!instance) {
      for (const ChainDecl* c : d.chains)
        failures.try_emplace(c->name,
                             Failure{"AttachFailed", d.ifname + ": " + instance.error().message()});
      continue;
    }
    Instance& inst = **instance;
    auto compose = [&](const std::map<std::string, AppliedChain>& chains) {
      std::vector<dataplane::ProgramSpec> all;
      for (const ChainDecl* c : d.chains)
        if (auto it = chains.find(c->name); it != chains.end())
          all.insert(all.end(), it->second.programs.begin(), it->second.programs.end());
      return all;
    };
    std::erase_if(inst.applied, [&](const auto& entry) {
      return std::none_of(d.chains.begin(), d.chains.end(),
                          [&](const ChainDecl* c) { return c->name == entry.first; });
    });
    if (auto base = inst.chain.apply(compose(inst.applied)); !base) {
      for (const ChainDecl* c : d.chains)
        failures.try_emplace(c->name, classifyApplyFailure(base.error(), d.ifname));
    }
    for (const ChainDecl* c : d.chains) {
      const auto& next = resolved[c->name];
      if (!next)
        continue;
      auto current = inst.applied.find(c->name);
      if (current != inst.applied.end() && current->second.generation == c->generation &&
          sameSpecs(current->second.programs, *next))
        continue;
      auto candidate = inst.applied;
      AppliedChain applied{c->generation, *next, {}};
      for (const auto& p : c->programs)
        applied.monitors.push_back(p.monitorMaps);
      candidate[c->name] = applied;
      auto start = Clock::now();
      auto result = inst.chain.apply(compose(candidate));
      applySeconds[c->name] += std::chrono::duration<double>(Clock::now() - start).count();
      if (result)
        inst.applied = std::move(candidate);
      else
        failures.try_emplace(c->name, classifyApplyFailure(result.error(), d.ifname));
    }
    if (!inst.attachment) {
      auto adopted = dataplane::Attachment::adopt(inst.chain.rootId(), inst.ifindex, inst.hook,
                                                  inst.dir + "/link", options_.attach);
      if (adopted && adopted->has_value()) {
        inst.attachment = std::move(**adopted);
      } else {
        auto attached = dataplane::Attachment::attach(inst.chain.rootFd(), inst.ifindex, inst.hook,
                                                      inst.dir + "/link", options_.attach);
        if (attached)
          inst.attachment = std::move(*attached);
        else
          for (const ChainDecl* c : d.chains)
            failures.try_emplace(
                c->name, Failure{"AttachFailed", std::string(dataplane::hookName(d.hook)) + " on " +
                                                     d.ifname + ": " + attached.error().message()});
      }
    }
    if (auto saved = saveState(inst); !saved)
      for (const ChainDecl* c : d.chains)
        failures.try_emplace(c->name, Failure{"StateWriteFailed", saved.error().message()});
  }

  // 4. Instances no chain wants any more, or whose interface is gone.
  std::vector<std::string> stale;
  for (const auto& [key, inst] : instances_)
    if (!desired.contains(key))
      stale.push_back(key);
  for (const auto& key : stale)
    removeInstance(key);

  // 5. Status, retries and metrics.
  NodeStatus status;
  for (const auto& c : spec.chains) {
    ChainStatus s;
    s.name = c.name;
    s.generation = c.generation;
    if (c.forPods()) {
      s.phase = "Ready"; // pod chains attach through the CNI plugin (node_reconciler pods TBD)
      status.chains.push_back(std::move(s));
      continue;
    }
    for (const auto& [key, inst] : instances_) {
      auto it = inst->applied.find(c.name);
      if (it == inst->applied.end())
        continue;
      AttachmentStatus a;
      a.interface = inst->ifname;
      a.hook = inst->hook;
      a.programIds.push_back(inst->chain.rootId());
      for (const auto& p : inst->chain.programs())
        if (p.id.rfind(c.name + "/", 0) == 0)
          a.programIds.push_back(p.programId);
      s.attachments.push_back(std::move(a));
    }
    if (auto f = failures.find(c.name); f != failures.end()) {
      s.phase = "Failed";
      s.reason = f->second.reason;
      s.message = f->second.message;
      RetryState& retry = retries_[c.name];
      bool sameAttempt = retry.generation == c.generation && retry.specDigest == digests[c.name];
      if (!sameAttempt || now >= retry.notBefore) {
        retry.backoff = sameAttempt ? std::min(retry.backoff * 2, kMaxRetry) : kFirstRetry;
        retry.generation = c.generation;
        retry.specDigest = digests[c.name];
        retry.notBefore = now + retry.backoff;
        retry.failure = f->second;
        if (metrics_)
          metrics_->countError(c.name, f->second.reason);
      }
    } else {
      s.phase = "Ready";
      retries_.erase(c.name);
    }
    if (metrics_ && applySeconds.contains(c.name))
      metrics_->observeApply(c.name, applySeconds[c.name]);
    status.chains.push_back(std::move(s));
  }
  std::erase_if(retries_, [&](const auto& entry) {
    return std::none_of(spec.chains.begin(), spec.chains.end(),
                        [&](const ChainDecl& c) { return c.name == entry.first; });
  });
  publishMetrics();
  return status;
}

std::optional<Clock::time_point> NodeReconciler::nextRetry() const {
  std::optional<Clock::time_point> next;
  for (const auto& [name, retry] : retries_)
    if (!next || retry.notBefore < *next)
      next = retry.notBefore;
  return next;
}

void NodeReconciler::detachAll() {
  std::vector<std::string> keys;
  for (const auto& [key, inst] : instances_)
    keys.push_back(key);
  for (const auto& key : keys)
    removeInstance(key);
  publishMetrics();
}

void NodeReconciler::publishMetrics() {
  if (!metrics_)
    return;
  std::vector<ExportedAttachment> exported;
  for (const auto& [key, inst] : instances_) {
    ExportedAttachment e;
    e.interface = inst->ifname;
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
        program.program = p.id.substr(chain.size() + 1);
        // chain.h's stats map, by its naming convention (a map called *_stats).
        std::error_code ec;
        for (const auto& pin : fs::directory_iterator(dirs[p.id] + "/maps", ec)) {
          std::string name = pin.path().filename().string();
          if (name.size() > 6 && name.ends_with("_stats")) {
            auto fd = inst->chain.openMap(p.id, name);
            if (fd && AgentMetrics::isStatsMap(fd->get())) {
              program.stats = std::make_shared<FD>(std::move(*fd));
              break;
            }
          }
        }
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
