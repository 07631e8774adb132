// The node's desired state: a BpfNodeConfig `spec`, which is also the standalone config file
// (DESIGN.md section 2). Parsed from JSON by the typed API (api/chain_spec.h; the standalone
// file's YAML is converted to JSON first, api/yaml_json.h), strictly: unknown fields and wrong
// types are errors that name the field, e.g. "chains[1].programs[0].package.sha256: ...".
// Each chain is parsed on its own: a chain this agent cannot parse (a CRD newer than the agent,
// a regex the API server let through) is listed in NodeSpec::invalid and fails alone with
// reason SpecInvalid; only a document that is not a spec at all fails as a whole.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "api/chain_spec.h"
#include "system/result.h"

namespace bpfchain::agent {

// The chain model is the typed API's (api/chain_spec.h), which both sources parse into.
using api::Aggregator;
using api::aggregatorName;
using api::ChainDecl;
using api::InterfaceSelector;
using api::LabelRequirementDecl;
using api::LabelSelectorDecl;
using api::MonitorMapDecl;
using api::PodsDecl;
using api::ProgramDecl;

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

// A spec sent by the API server: a missing or null `chains` is no chains. A whole
// BpfNodeConfig object is accepted too (its spec is the config).
Result<NodeSpec> parseNodeSpec(const k8s::Json& document, const std::string& source);
// A spec written in YAML (the standalone file's form), converted to JSON and parsed as above.
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
