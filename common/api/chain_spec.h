// A chain as a node runs it (DESIGN.md section 2): the node-facing part of a BpfChain's spec
// (hook, priority, placement, interfaces or pods, programs), which is also an inline
// BpfNodeConfig spec.chains[] entry and a chain of the standalone config file (with name and
// generation). Parsed once from JSON (k8s::Json; the standalone YAML file is converted first,
// api/yaml_json.h), strictly: unknown fields and wrong types are errors that name the field,
// e.g. "chains[1].programs[0].package.sha256: not 64 lowercase hex digits".
//
// Scalars are read as YAML reads them, whatever JSON type carries them: a string field takes a
// number's or boolean's text, an integer field a string of digits, a boolean field "yes" or
// "true" (what hand-written files and older agents accepted). The schema the parser knows is
// chainSchema(), from which its unknown-field checks and the CRD test (crd_schema_test) read.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <vector>

#include "dataplane/hook.h"
#include "dataplane/program_spec.h"
#include "system/result.h"

namespace web::json {
class value;
} // namespace web::json

namespace bpfchain::k8s {
using Json = web::json::value;
} // namespace bpfchain::k8s

namespace bpfchain::api {

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
  // `names`: a JSON list of strings. Errors name `field`.
  static Result<InterfaceSelector> parse(const k8s::Json& names, const std::string& field);
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

// An inline chain (name, generation and the node-facing spec fields); a missing generation is
// 1 (standalone files have one). Errors name `field` ("chains[2]").
Result<ChainDecl> parseChain(const k8s::Json& node, const std::string& field);
// The name a status entry of a chain that did not parse carries: its `name` when that is a
// valid chain name, else `position` ("chains[3]").
std::string invalidChainName(const k8s::Json& chain, const std::string& position);
// Its `generation` when that much parses (else 0, for a status entry).
int64_t invalidChainGeneration(const k8s::Json& chain, const std::string& position);

// The schema the parser knows: a field is a scalar, a list (`list`) of scalars or of objects,
// or an object with `members`; maps of strings and free-form values (mapArgs keys and values)
// have no members.
struct FieldSchema {
  const char* name;
  std::span<const FieldSchema> members = {};
  bool list = false;
};
// An inline chain's fields: name, generation, then the BpfChain spec's node-facing ones.
std::span<const FieldSchema> chainSchema();
// The BpfChain spec fields that are the chain's (chainSchema() without name and generation).
std::vector<std::string> nodeFacingChainFields();
// The BpfChain spec fields the operator reads and nodes never see (nodeSelector, rollout).
std::span<const char* const> operatorChainFields();
// Every leaf of `schema` as a path: "programs[].package.url", "interfaces.names[]".
std::vector<std::string> fieldPaths(std::span<const FieldSchema> schema);

} // namespace bpfchain::api
