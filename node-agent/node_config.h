// The node's desired state: a BpfNodeConfig `spec`, which is also the standalone config file
// (DESIGN.md section 2). Parsed from YAML (JSON is YAML), strictly: unknown fields and wrong
// types are errors that name the field, e.g. "chains[1].programs[0].package.sha256: ...".
// Each chain is parsed on its own: a chain this agent cannot parse (a CRD newer than the agent,
// a regex the API server let through) is listed in NodeSpec::invalid and fails alone with
// reason SpecInvalid; only a document that is not a spec at all fails as a whole.
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
  bool operator==(const MonitorMapDecl&) const = default;
};

struct ProgramDecl {
  std::string name;
  std::string url;
  std::string sha256;
  std::string entry;   // "" = the package manifest's
  std::string nextMap; // "" = the package manifest's
  bool enabled = true;
  std::map<std::string, std::string> globalData;
  bool freshState = false;            // a new version starts with empty maps
  std::vector<std::string> freshMaps; // ... or only these
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

// A Kubernetes label selector as the chain gives it (metav1.LabelSelector); matching is the
// source's (cluster mode: k8s::LabelSelector, which also judges the operators).
struct LabelRequirementDecl {
  std::string key;
  std::string op; // In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
  bool operator==(const LabelRequirementDecl&) const = default;
};
struct LabelSelectorDecl {
  std::map<std::string, std::string> matchLabels;
  std::vector<LabelRequirementDecl> matchExpressions;
  bool empty() const { return matchLabels.empty() && matchExpressions.empty(); } // selects all
  bool operator==(const LabelSelectorDecl&) const = default;
};
// A pods chain's selection: the pods matching podSelector in namespaces matching
// namespaceSelector (absent or null selectors select everything).
struct PodsDecl {
  LabelSelectorDecl namespaceSelector;
  LabelSelectorDecl podSelector;
  bool operator==(const PodsDecl&) const = default;
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
  PodsDecl pods;                               // when interfaces is not set
  std::vector<ProgramDecl> programs;
  // The chain revision (api::ChainRef::revision) this declaration was resolved from; "" for an
  // inline chain (the standalone file's, or an older operator's).
  std::string revision;

  bool forPods() const { return !interfaces.has_value(); }
};

// A chain whose target cannot be run: its declaration does not parse (SpecInvalid), or the
// revision it refers to cannot be read (RevisionUnavailable) or is not the one referred to
// (DigestMismatch). Its status says reasonName(kind) with `message`; the generation it last
// ran keeps running.
struct InvalidChain {
  std::string name;       // the chain's name, or "chains[<i>]" when the name itself is bad
  int64_t generation = 0; // the target generation, when that much parsed
  std::string message;    // names the source and the field, or the revision
  ErrorKind kind = ErrorKind::SpecInvalid;
  std::string revision; // the target revision, for a reference; "" for an inline chain
  bool operator==(const InvalidChain&) const = default;
};

struct NodeSpec {
  std::vector<ChainDecl> chains; // unique names
  // Names unique. Distinct from those of `chains`, except that a source may give an invalid
  // chain's last good declaration in `chains` (one it resolved before, e.g. before a
  // restart): that one keeps running.
  std::vector<InvalidChain> invalid;
};

// A spec sent by the API server: a missing or null `chains` is no chains.
Result<NodeSpec> parseNodeSpec(const YAML::Node& document, const std::string& source);
// The largest standalone config file read: a BpfNodeConfig object is at most 1.5 MiB in etcd,
// and a YAML tree takes about 100 times its text in memory (a 5.8 MB file took the agent to
// 593 MB), so a bigger file is refused before it is parsed.
inline constexpr uintmax_t kMaxConfigFileBytes = uintmax_t{1} << 20;

// A standalone config file. Stricter than parseNodeSpec: a hand-written or half-written file
// that says nothing (0 bytes, only comments, `chains:` without a value) is an error, not "no
// chains": only `chains: []` removes every chain. So is a file over kMaxConfigFileBytes.
Result<NodeSpec> loadNodeSpecFile(const std::string& path);

} // namespace bpfchain::agent
