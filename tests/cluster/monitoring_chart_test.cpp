// The chart's monitoring values, rendered by the helm tools/envtest builds: prometheusRule
// ships dashboards/alerts/bpfchain.rules.yaml unrendered (Prometheus's {{ $labels }} intact),
// dashboards ships every dashboards/*.json as a ConfigMap for Grafana's sidecar; both are off
// by default and the schema refuses a malformed value.
#include <algorithm>
#include <filesystem>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "harness/dashboards.h"
#include "harness/process.h"
#include "harness/resources.h"
#include "harness/test_bed_tools.h"

namespace bpfchain::testing {
namespace {

const std::string kChart = std::string(BPFCHAIN_SOURCE_DIR) + "/charts/bpfchain";

CommandOutput helm(const std::vector<std::string>& args) {
  std::vector<std::string> argv{testBedToolsDir() + "/helm"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto out = runCommand(argv);
  EXPECT_TRUE(out.ok()) << describeCommand(argv) << ": " << out.error().message();
  return out.ok() ? *out : CommandOutput{-1, "", ""};
}

std::vector<YAML::Node> render(const std::vector<std::string>& sets) {
  std::vector<std::string> args{"template", "mon", kChart, "--namespace", "observe"};
  for (const auto& s : sets) {
    args.emplace_back("--set");
    args.push_back(s);
  }
  auto out = helm(args);
  EXPECT_EQ(out.exitCode, 0) << out.err;
  std::vector<YAML::Node> docs;
  for (const auto& doc : YAML::LoadAll(out.out))
    if (doc.IsMap())
      docs.push_back(doc);
  return docs;
}

std::vector<YAML::Node> ofKind(const std::vector<YAML::Node>& docs, const std::string& kind) {
  std::vector<YAML::Node> found;
  for (const auto& d : docs)
    if (d["kind"].as<std::string>("") == kind)
      found.push_back(d);
  return found;
}

TEST(MonitoringChart, OffByDefault) {
  ASSERT_FALSE(testBedToolsDir().empty());
  auto docs = render({});
  EXPECT_TRUE(ofKind(docs, "PrometheusRule").empty());
  for (const auto& cm : ofKind(docs, "ConfigMap"))
    EXPECT_FALSE(cm["metadata"]["labels"]["grafana_dashboard"].IsDefined());
}

TEST(MonitoringChart, ShipsTheRulesUnrenderedAndEveryDashboard) {
  auto docs = render({"prometheusRule.enabled=true",
                      "prometheusRule.additionalLabels.release=kube-prometheus-stack",
                      "dashboards.enabled=true", "dashboards.namespace=grafana",
                      "dashboards.annotations.grafana_folder=bpfchain"});
  auto rules = ofKind(docs, "PrometheusRule");
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0]["metadata"]["namespace"].as<std::string>(), "observe");
  EXPECT_EQ(rules[0]["metadata"]["labels"]["release"].as<std::string>(""), "kube-prometheus-stack");
  YAML::Node source = YAML::LoadFile(dashboardsDir() + "/alerts/bpfchain.rules.yaml");
  EXPECT_EQ(YAML::Dump(rules[0]["spec"]["groups"]), YAML::Dump(source["groups"]));
  EXPECT_NE(YAML::Dump(rules[0]["spec"]).find("{{ $labels.chain }}"), std::string::npos)
      << "Helm must not render Prometheus's templates";

  std::map<std::string, YAML::Node> maps;
  for (const auto& cm : ofKind(docs, "ConfigMap"))
    if (cm["metadata"]["labels"]["grafana_dashboard"].as<std::string>("") == "1")
      maps[cm["metadata"]["name"].as<std::string>()] = cm;
  auto files = dashboardFiles();
  ASSERT_EQ(maps.size(), files.size());
  for (const auto& file : files) {
    std::string name = std::filesystem::path(file).filename().string();
    std::string stem = std::filesystem::path(file).stem().string();
    SCOPED_TRACE(name);
    ASSERT_TRUE(maps.contains("mon-bpfchain-dashboard-" + stem));
    const YAML::Node& cm = maps["mon-bpfchain-dashboard-" + stem];
    EXPECT_EQ(cm["metadata"]["namespace"].as<std::string>(), "grafana");
    EXPECT_EQ(cm["metadata"]["annotations"]["grafana_folder"].as<std::string>(""), "bpfchain");
    // Byte for byte, but for the trailing newline "|-" drops.
    std::string text = readFile(file);
    while (!text.empty() && text.back() == '\n')
      text.pop_back();
    EXPECT_EQ(cm["data"][name].as<std::string>(""), text);
  }
}

TEST(MonitoringChart, ADifferentSidecarLabelAndStrictLint) {
  auto docs = render(
      {"dashboards.enabled=true", "dashboards.label=my_dashboards", "dashboards.labelValue=yes"});
  size_t labelled = 0;
  for (const auto& cm : ofKind(docs, "ConfigMap"))
    labelled += cm["metadata"]["labels"]["my_dashboards"].as<std::string>("") == "yes";
  EXPECT_EQ(labelled, dashboardFiles().size());
  auto lint = helm({"lint", "--strict", kChart, "--set", "prometheusRule.enabled=true", "--set",
                    "dashboards.enabled=true"});
  EXPECT_EQ(lint.exitCode, 0) << lint.out << lint.err;
}

TEST(MonitoringChart, TheSchemaRefusesMalformedValues) {
  for (const char* bad : {"prometheusRule.enabled=yes", "dashboards.namespace=Not_A_Ns",
                          "dashboards.label=bad label"}) {
    auto out = helm({"template", "mon", kChart, "--set-string", bad});
    EXPECT_NE(out.exitCode, 0) << bad << " was accepted";
    std::string field = std::string(bad).substr(0, std::string(bad).find('='));
    std::replace(field.begin(), field.end(), '.', '/');
    EXPECT_NE(out.err.find(field), std::string::npos) << out.err; // names the field
  }
}

} // namespace
} // namespace bpfchain::testing
