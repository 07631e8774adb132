// The standalone file's YAML as JSON, and the chain parser reading scalars as YAML does.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "api/chain_spec.h"
#include "api/yaml_json.h"

namespace bpfchain::api {
namespace {

k8s::Json converted(const std::string& yaml) {
  auto json = jsonFromYaml(YAML::Load(yaml), "test.yaml");
  EXPECT_TRUE(json.ok()) << json.error().message();
  return json ? *json : k8s::Json::null();
}

TEST(YamlJson, KeepsWhatWasWrittenAndTypesOnlyCanonicalScalars) {
  k8s::Json j = converted("{int: 42, neg: -7, zero: 0, quoted: \"5\", octal: 007, hex: 0x10, "
                          "float: 1.50, plus: +5, yes: yes, t: true, f: false, T: True, "
                          "big: 99999999999999999999, tilde: ~, none: null, empty: }");
  EXPECT_TRUE(j.at("int").is_integer());
  EXPECT_EQ(j.at("int").serialize(), "42");
  EXPECT_EQ(j.at("neg").serialize(), "-7");
  EXPECT_EQ(j.at("zero").serialize(), "0");
  for (const auto& [key, text] :
       std::vector<std::pair<std::string, std::string>>{{"quoted", "5"},
                                                        {"octal", "007"},
                                                        {"hex", "0x10"},
                                                        {"float", "1.50"},
                                                        {"plus", "+5"},
                                                        {"yes", "yes"},
                                                        {"T", "True"},
                                                        {"big", "99999999999999999999"}}) {
    ASSERT_TRUE(j.at(key).is_string()) << key;
    EXPECT_EQ(j.at(key).as_string(), text) << key;
  }
  EXPECT_TRUE(j.at("t").is_boolean() && j.at("t").as_bool());
  EXPECT_TRUE(j.at("f").is_boolean() && !j.at("f").as_bool());
  for (const char* key : {"tilde", "none", "empty"})
    EXPECT_TRUE(j.at(key).is_null()) << key;
}

TEST(YamlJson, KeepsMembersInWrittenOrder) {
  EXPECT_EQ(converted("{b: 1, a: [x, {d: 2, c: 3}]}").serialize(),
            R"({"b":1,"a":["x",{"d":2,"c":3}]})");
}

TEST(YamlJson, AMemberNameThatIsNotAScalarIsAnErrorNamingItsPlace) {
  auto json = jsonFromYaml(YAML::Load("chains:\n- {[a]: 1}\n"), "f.yaml");
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.error().message(), "f.yaml: chains[0]: a member name is not a string (line 2)");
}

// The schema's scalars are read as YAML reads them, whichever JSON type carries them: the file
// and the API server's JSON give the same chain.
TEST(ChainSpec, ReadsScalarsAsYamlDoesWhateverTheirJsonType) {
  const std::string sha(64, 'a');
  k8s::Json fromApi = k8s::Json::parse(
      R"({"name":"c","generation":"2","hook":"xdp","priority":"0x10","interfaces":{"names":["eth0"]},)"
      R"("programs":[{"name":"p","enabled":"yes","package":{"url":"file:///p","sha256":")" +
      sha +
      R"("},"globalData":{"rate":1000,"on":true},"mapArgs":[{"map":"m","entries":)"
      R"([{"key":80,"value":{"b":1.5,"a":null}}]}]}]})");
  auto chain = parseChain(fromApi, "chains[0]");
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  EXPECT_EQ(chain->generation, 2);
  EXPECT_EQ(chain->priority, 16);
  EXPECT_TRUE(chain->programs[0].enabled);
  EXPECT_EQ(chain->programs[0].globalData.at("rate"), "1000");
  EXPECT_EQ(chain->programs[0].globalData.at("on"), "true");
  const auto& entry = chain->programs[0].mapArgs[0].entries[0];
  EXPECT_EQ(entry.key, btf::ArgValue::text("80"));
  ASSERT_EQ(entry.value.kind, btf::ArgValue::Kind::Map);
  EXPECT_EQ(entry.value.names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(entry.value.items[0].kind, btf::ArgValue::Kind::Null);

  auto yaml = jsonFromYaml(YAML::Load("{name: c, generation: \"2\", hook: xdp, priority: 0x10, "
                                      "interfaces: {names: [eth0]}, programs: [{name: p, enabled: "
                                      "yes, package: {url: \"file:///p\", sha256: " +
                                      sha +
                                      "}, globalData: {rate: 1000, on: true}, mapArgs: [{map: m, "
                                      "entries: [{key: 80, value: {b: 1.5, a: ~}}]}]}]}"),
                           "f.yaml");
  ASSERT_TRUE(yaml.ok()) << yaml.error().message();
  auto fromFile = parseChain(*yaml, "chains[0]");
  ASSERT_TRUE(fromFile.ok()) << fromFile.error().message();
  EXPECT_EQ(fromFile->priority, 16);
  EXPECT_EQ(fromFile->programs[0].globalData, chain->programs[0].globalData);
  // The file keeps the written order of a map value; the API server's JSON is sorted.
  EXPECT_EQ(fromFile->programs[0].mapArgs[0].entries[0].key, entry.key);
  EXPECT_EQ(fromFile->programs[0].mapArgs[0].entries[0].value.names,
            (std::vector<std::string>{"b", "a"}));
}

TEST(ChainSpec, SchemaPathsNameEveryLeaf) {
  std::vector<std::string> paths = fieldPaths(chainSchema());
  for (const char* p :
       {"name", "interfaces.names[]", "pods.podSelector.matchExpressions[].values[]",
        "programs[].package.sha256", "programs[].mapArgs[].entries[].value",
        "programs[].monitorMaps[].aggregator"})
    EXPECT_NE(std::find(paths.begin(), paths.end(), p), paths.end()) << p;
  EXPECT_EQ(nodeFacingChainFields(), (std::vector<std::string>{"hook", "priority", "placement",
                                                               "interfaces", "pods", "programs"}));
}

} // namespace
} // namespace bpfchain::api
