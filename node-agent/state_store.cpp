#include "node-agent/state_store.h"

#include <algorithm>
#include <filesystem>
#include <yaml-cpp/yaml.h>

#include "btf/arg_value.h"
#include "system/file.h"
#include "system/log.h"

namespace bpfchain::agent {

namespace fs = std::filesystem;

namespace {

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

// Throws YAML::Exception on a record that does not say what it must.
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

YAML::Node monitorsToYaml(const std::vector<MonitorMapDecl>& monitors) {
  YAML::Node list(YAML::NodeType::Sequence);
  for (const auto& m : monitors) {
    YAML::Node d;
    d["map"] = m.map;
    d["key"] = m.key;
    d["aggregator"] = aggregatorName(m.aggregator);
    list.push_back(d);
  }
  return list;
}

std::vector<MonitorMapDecl> monitorsFromYaml(const YAML::Node& list) {
  std::vector<MonitorMapDecl> monitors;
  for (const auto& d : list) {
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
  return monitors;
}

// One chain of an instance record; nullopt when an enabled program of it no longer runs.
std::optional<AppliedChain> chainFromYaml(const YAML::Node& c,
                                          const std::set<std::string>& running) {
  AppliedChain applied;
  applied.generation = c["generation"].as<int64_t>();
  // Absent in the state of agents before references, and of inline chains. (A missing key of a
  // const node is invalid, and asking an invalid node its type throws: the whole state would
  // be dropped and every program reloaded.)
  if (const YAML::Node revision = c["revision"]; revision.IsDefined() && revision.IsScalar())
    applied.revision = revision.as<std::string>();
  bool complete = true;
  for (const auto& p : c["programs"]) {
    applied.programs.push_back(programFromYaml(p));
    if (applied.programs.back().enabled && !running.contains(applied.programs.back().id))
      complete = false;
  }
  for (const auto& m : c["monitors"])
    applied.monitors.push_back(monitorsFromYaml(m));
  if (!complete)
    return std::nullopt;
  return applied;
}

} // namespace

StateStore::StateStore(std::string stateDir, uint64_t netnsInode)
    : dir_(std::move(stateDir)), netnsInode_(netnsInode) {}

Result<void> StateStore::prepare() const {
  std::error_code ec;
  for (const char* sub : {"/instances", "/pods"}) {
    fs::create_directories(dir_ + sub, ec);
    if (ec)
      return Error(ec.value(), "create " + dir_ + sub + ": " + ec.message());
  }
  return {};
}

std::string StateStore::instanceFile(const std::string& key) const {
  std::string name = key;
  std::replace(name.begin(), name.end(), '/', '-');
  return dir_ + "/instances/" + std::to_string(netnsInode_) + "-" + name + ".yaml";
}

AppliedChains StateStore::loadInstance(const std::string& key,
                                       const std::set<std::string>& running) const {
  AppliedChains chains;
  try {
    YAML::Node doc = YAML::LoadFile(instanceFile(key));
    // Only chains whose programs all still run as recorded are taken: the kernel is the truth.
    for (const auto& c : doc["chains"])
      if (auto applied = chainFromYaml(c, running))
        chains[c["name"].as<std::string>()] = std::move(*applied);
  } catch (const YAML::Exception&) {
    // No or unreadable state: the chains on this instance are re-resolved from the spec, and
    // programs no chain claims are removed by the next apply.
    return {};
  }
  return chains;
}

Result<void> StateStore::saveInstance(const std::string& key, const InstanceRecord& record) const {
  YAML::Node doc;
  doc["ifindex"] = record.ifindex;
  doc["interface"] = record.ifname;
  doc["hook"] = std::string(dataplane::hookName(record.hook));
  doc["chains"] = YAML::Node(YAML::NodeType::Sequence);
  for (const auto& [name, applied] : record.chains) {
    YAML::Node c;
    c["name"] = name;
    c["generation"] = applied.generation;
    if (!applied.revision.empty())
      c["revision"] = applied.revision;
    c["programs"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& p : applied.programs)
      c["programs"].push_back(programToYaml(p));
    c["monitors"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& monitors : applied.monitors)
      c["monitors"].push_back(monitorsToYaml(monitors));
    doc["chains"].push_back(c);
  }
  return writeFileAtomic(instanceFile(key), YAML::Dump(doc) + "\n", {.durable = false});
}

void StateStore::removeInstance(const std::string& key) const {
  std::error_code ec;
  fs::remove(instanceFile(key), ec);
}

// One file per attachment, so that an ADD or DEL writes one small record whatever the number
// of pods on the node.
void StateStore::savePod(const PodRecordFile& pod) const {
  YAML::Node p;
  p["containerId"] = pod.ref.containerId;
  p["network"] = pod.ref.network;
  p["podIfname"] = pod.ref.podIfname;
  p["namespace"] = pod.ref.ns;
  p["name"] = pod.ref.name;
  p["hostIfname"] = pod.ref.hostIfname;
  p["hostIfindex"] = pod.ref.hostIfindex;
  for (const auto& [hook, key] : pod.links)
    p["links"][std::string(dataplane::hookName(hook))] = key;
  // Not durable, as the state files: a pod ADD does not wait for the disk.
  if (auto w = writeFileAtomic(dir_ + "/pods/" + attachmentKey(pod.ref) + ".yaml",
                               YAML::Dump(p) + "\n", {.durable = false});
      !w)
    log::error("cannot write a pod record",
               {{"pod", pod.ref.ns + "/" + pod.ref.name}, {"error", w.error().message()}});
}

void StateStore::forgetPod(const std::string& attachmentKey) const {
  std::error_code ec;
  fs::remove(dir_ + "/pods/" + attachmentKey + ".yaml", ec);
}

std::vector<PodRecordFile> StateStore::loadPods() const {
  std::vector<PodRecordFile> pods;
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(dir_ + "/pods", ec)) {
    if (file.path().extension() != ".yaml")
      continue; // a .tmp left by a crash mid-write: the record before it still stands
    PodRecordFile pod;
    try {
      YAML::Node p = YAML::LoadFile(file.path().string());
      pod.ref = PodRef{p["containerId"].as<std::string>(), p["namespace"].as<std::string>(),
                       p["name"].as<std::string>(),        p["hostIfname"].as<std::string>(),
                       p["hostIfindex"].as<int>(),         p["podIfname"].as<std::string>(),
                       p["network"].as<std::string>()};
      for (const auto& l : p["links"])
        if (auto hook = dataplane::parseHook(l.first.as<std::string>()))
          pod.links[*hook] = l.second.as<std::string>();
      if (file.path().stem().string() != attachmentKey(pod.ref))
        throw YAML::Exception(YAML::Mark::null_mark(), "the record does not match its file name");
    } catch (const YAML::Exception& e) {
      // CNI CHECK reports such a pod as not attached; its pins stay until GC or DEL.
      log::warning("pod record ignored", {{"file", file.path().string()}, {"error", e.what()}});
      continue;
    }
    pods.push_back(std::move(pod));
  }
  return pods;
}

} // namespace bpfchain::agent
