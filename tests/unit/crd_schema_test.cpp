// The CRDs crds/generate.py writes and the C++ API read and write the same fields: a field
// added to one and not the other fails here (regenerate the CRDs with crds/generate.py).
#include <algorithm>
#include <gtest/gtest.h>
#include <set>
#include <string>
#include <yaml-cpp/yaml.h>

#include "api/chain_ref.h"
#include "api/chain_spec.h"
#include "api/node_config_types.h"
#include "api/published_rollout.h"

namespace bpfchain::api {
namespace {

using Paths = std::set<std::string>;

YAML::Node schemaOf(const std::string& file) {
  YAML::Node crd = YAML::LoadFile(std::string(BPFCHAIN_SOURCE_DIR) + "/crds/" + file);
  return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
}

// The leaves under `schema`, as chain_spec.h's fieldPaths() writes them: "a.b[].c". An object
// without properties (a map of values, a free-form value) is a leaf.
void leaves(const YAML::Node& schema, const std::string& path, Paths& out) {
  if (schema["properties"]) {
    for (const auto& kv : schema["properties"])
      leaves(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), out);
    return;
  }
  if (schema["items"]) {
    leaves(schema["items"], path + "[]", out);
    return;
  }
  out.insert(path);
}

Paths leavesOf(const YAML::Node& schema) {
  Paths out;
  leaves(schema, "", out);
  return out;
}

std::string topLevel(const std::string& path) {
  return path.substr(0, path.find_first_of(".["));
}

std::string describe(const Paths& paths) {
  std::string s;
  for (const auto& p : paths)
    s += " " + p;
  return s;
}

// What is in `a` and not in `b`.
Paths minus(const Paths& a, const Paths& b) {
  Paths out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

void expectSame(const Paths& crd, const Paths& cpp, const std::string& what) {
  EXPECT_TRUE(minus(crd, cpp).empty())
      << what << ": in the CRD, unknown to the C++ API:" << describe(minus(crd, cpp));
  EXPECT_TRUE(minus(cpp, crd).empty())
      << what << ": in the C++ API, not in the CRD:" << describe(minus(cpp, crd));
}

TEST(CrdSchema, BpfChainSpecIsTheChainSchemaAndTheOperatorsFields) {
  Paths crd = leavesOf(schemaOf("bpfchain.io_bpfchains.yaml")["properties"]["spec"]);
  std::set<std::string> operatorFields(operatorChainFields().begin(), operatorChainFields().end());
  std::vector<std::string> nodeFacing = nodeFacingChainFields();
  Paths nodeFacingCrd;
  for (const auto& p : crd)
    if (!operatorFields.contains(topLevel(p)))
      nodeFacingCrd.insert(p);
  Paths cpp;
  for (const auto& p : fieldPaths(chainSchema()))
    if (std::find(nodeFacing.begin(), nodeFacing.end(), topLevel(p)) != nodeFacing.end())
      cpp.insert(p);
  expectSame(nodeFacingCrd, cpp, "BpfChain spec");
  for (const auto& f : operatorFields)
    EXPECT_TRUE(
        std::any_of(crd.begin(), crd.end(), [&](const auto& p) { return topLevel(p) == f; }))
        << f << ": an operator field the CRD does not have";
}

TEST(CrdSchema, BpfNodeConfigSpecChainsAreInlineChainsReferencesAndMemberships) {
  YAML::Node spec = schemaOf("bpfchain.io_bpfnodeconfigs.yaml")["properties"]["spec"];
  EXPECT_FALSE(leavesOf(spec["properties"]["chains"]["items"]).empty());
  Paths specTop;
  for (const auto& kv : spec["properties"])
    specTop.insert(kv.first.Scalar());
  EXPECT_EQ(specTop, Paths{"chains"}) << "parseNodeSpec knows only chains";
  std::vector<std::string> fields = chainEntryFields();
  Paths cpp(fields.begin(), fields.end());
  expectSame(leavesOf(spec["properties"]["chains"]["items"]), cpp, "BpfNodeConfig spec.chains[]");
}

TEST(CrdSchema, BpfNodeConfigStatusIsWhatTheAgentWrites) {
  Paths crd = leavesOf(schemaOf("bpfchain.io_bpfnodeconfigs.yaml")["properties"]["status"]);
  std::vector<std::string> fields = nodeConfigStatusFields();
  expectSame(crd, Paths(fields.begin(), fields.end()), "BpfNodeConfig status");
}

} // namespace
} // namespace bpfchain::api
