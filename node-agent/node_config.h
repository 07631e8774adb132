// The node's desired state: a BpfNodeConfig `spec`, which is also the standalone config file
// (DESIGN.md section 2). Parsed from YAML (JSON is YAML), strictly: unknown fields and wrong
// types are errors that name the field, e.g. "chains[1].programs[0].package.sha256: ...".
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "dataplane/hook.h"
#include "dataplane/program_spec.h"
#include "system/result.h"

namespace bpfchain::agent {

enum class Aggregator { Scalar, Sum, MaxRate, Avg };
const char* aggregatorName(Aggregator a); // "scalar", "sum", "max-rate", "avg"

struct MonitorMapDecl {
  std::string map;
  std::string key = "0";
  Aggregator aggregator = Aggregator::Scalar;
};

struct ProgramDecl {
  std::string name;
  std::string url;
  std::string sha256;
  std::string entry;   // "" = the package manifest's
  std::string nextMap; // "" = the package manifest's
  bool enabled = true;
  std::map<std::string, std::string> globalData;
  std::vector<dataplane::MapArgSpec> mapArgs;
  std::vector<MonitorMapDecl> monitorMaps;
};

// Host interface names: exact names, or regular expressions written /like this/.
class InterfaceSelector {
public:
  static Result<InterfaceSelector> parse(const YAML::Node& names, const std::string& field);
  bool matches(const std::string& ifname) const;

private:
  std::vector<std::string> exact_;
  std::vector<std::regex> patterns_;
};

struct ChainDecl {
  std::string name;
  int64_t generation = 0;
  dataplane::Hook hook = dataplane::Hook::Xdp;
  int priority = 100;
  // placement: last: on a TCX hook, the interface's root goes after other tools' programs
  // instead of first (it goes last only when every chain of the interface and hook asks).
  bool placeLast = false;
  std::optional<InterfaceSelector> interfaces; // exactly one of interfaces / pods
  YAML::Node pods;                             // {namespaceSelector, podSelector} when set
  std::vector<ProgramDecl> programs;

  bool forPods() const { return !interfaces.has_value(); }
};

struct NodeSpec {
  std::vector<ChainDecl> chains; // unique names
};

Result<NodeSpec> parseNodeSpec(const YAML::Node& document, const std::string& source);
Result<NodeSpec> loadNodeSpecFile(const std::string& path);

} // namespace bpfchain::agent
