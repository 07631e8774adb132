// The one version (docs/releasing.md): CMakeLists.txt's project VERSION is what every binary's
// --version says, the image tag (scripts/image.sh --version), the chart's appVersion, the
// manifests' image tag and a CHANGELOG.md section. And the image's one definition: the
// Containerfile and scripts/image.sh both build it with image/make-rootfs.sh from
// image/runtime-packages.txt, and that list is exactly what the built binaries load.
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>
#include <yaml-cpp/yaml.h>

#include "harness/process.h"
#include "harness/resources.h"

namespace bpfchain::testing {
namespace {

const std::string kSource = BPFCHAIN_SOURCE_DIR;
const std::string kBin = BPFCHAIN_BIN_DIR;

std::string binary(const std::string& name) {
  return std::string(kBin).append("/").append(name);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

TEST(Release, TheBuildsVersionIsCMakesProjectVersion) {
  std::smatch m;
  std::string cmake = readFile(kSource + "/CMakeLists.txt");
  ASSERT_TRUE(std::regex_search(cmake, m, std::regex(R"(project\(bpfchain VERSION ([0-9.]+))")));
  EXPECT_EQ(m[1].str(), BPFCHAIN_VERSION);
}

TEST(Release, EveryBinaryAnswersVersionWithTheProjectVersion) {
  for (const char* binary : {"bpfchain-operator", "bpfchain-agent", "bpfchain-cni", "bpfchain-pkg",
                             "kubectl-bpfchain"}) {
    auto r = checkCommand({kBin + "/" + binary, "--version"});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->out, std::string(binary) + " " + BPFCHAIN_VERSION + "\n");
  }
}

// Usage on stdout or stderr (each binary's habit), exit 0.
TEST(Release, EveryBinaryAnswersHelpWithItsUsage) {
  for (const char* binary : {"bpfchain-operator", "bpfchain-agent", "bpfchain-cni", "bpfchain-pkg",
                             "kubectl-bpfchain"}) {
    auto r = checkCommand({kBin + "/" + binary, "--help"});
    ASSERT_TRUE(r.ok()) << binary << ": " << r.error().message();
    EXPECT_NE((r->out + r->err).find(std::string("usage: ") + binary), std::string::npos)
        << binary << ": " << r->out << r->err;
  }
}

// Every binary and benchmark has the one command line (system/command_line.h): --help and
// --version on stdout with exit 0, and an unknown flag refused by name with exit 2, in its
// --flag=value form too; each of the binary's commands as well.
TEST(Release, EveryCommandLineAnswersHelpVersionAndRefusesAnUnknownFlag) {
  std::vector<std::vector<std::string>> commands = {
      {"bpfchain-operator"},          {"bpfchain-agent"},
      {"bpfchain-agent", "status"},   {"bpfchain-cni", "install"},
      {"bpfchain-cni", "uninstall"},  {"bpfchain-pkg", "build"},
      {"bpfchain-pkg", "digest"},     {"bpfchain-pkg", "keygen"},
      {"bpfchain-pkg", "sign"},       {"bpfchain-pkg", "verify"},
      {"kubectl-bpfchain", "status"}, {"kubectl-bpfchain", "nodes"}};
  for (const char* bench : {"dataplane", "k8s-informer", "operator-scale", "agent-rollout",
                            "agent-memory", "cni-add", "upgrades"})
    commands.push_back({std::string("bpfchain-bench-") + bench});
  for (const auto& command : commands) {
    std::string name = command[0];
    std::vector<std::string> argv = command;
    argv[0] = binary(name);
    std::string shown = command.size() > 1 ? name + " " + command[1] : name;
    SCOPED_TRACE(shown);
    auto with = [&](std::vector<std::string> extra) {
      std::vector<std::string> args = argv;
      args.insert(args.end(), extra.begin(), extra.end());
      auto r = runCommand(args);
      EXPECT_TRUE(r.ok()) << r.error().message();
      return r.ok() ? *r : CommandOutput{};
    };
    auto help = with({"--help"});
    EXPECT_EQ(help.exitCode, 0) << help.err;
    EXPECT_EQ(help.out.rfind("usage: " + shown + " [OPTIONS]", 0), 0u) << help.out;
    if (command.size() == 1) {
      auto version = with({"--version"});
      EXPECT_EQ(version.exitCode, 0) << version.err;
      EXPECT_EQ(version.out, name + " " + BPFCHAIN_VERSION + "\n");
    }
    for (const std::string& bad :
         {std::string("--no-such-flag"), std::string("--no-such-flag=1")}) {
      auto refused = with({bad});
      EXPECT_EQ(refused.exitCode, 2) << bad;
      EXPECT_EQ(refused.err.rfind(shown + ": unknown option --no-such-flag\n", 0), 0u)
          << bad << ": " << refused.err;
      EXPECT_EQ(refused.out, "");
    }
  }
}

// Each benchmark's --help says what every flag is for: CLI11 prints an option's description
// after two or more spaces on its line, or on the next line when the option is too wide.
TEST(Release, EveryBenchmarkFlagHasADescription) {
  for (const char* bench : {"dataplane", "k8s-informer", "operator-scale", "agent-rollout",
                            "agent-memory", "cni-add", "upgrades"}) {
    std::string name = std::string("bpfchain-bench-") + bench;
    SCOPED_TRACE(name);
    auto help = runCommand({binary(name), "--help"});
    ASSERT_TRUE(help.ok()) << help.error().message();
    std::vector<std::string> lines;
    std::istringstream in(help->out);
    for (std::string line; std::getline(in, line);)
      lines.push_back(line);
    size_t options = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].rfind("  -", 0) != 0)
        continue;
      ++options;
      size_t gap = lines[i].find("  ", 2);
      bool sameLine =
          gap != std::string::npos && lines[i].find_first_not_of(' ', gap) != std::string::npos;
      bool nextLine = i + 1 < lines.size() && lines[i + 1].rfind("      ", 0) == 0 &&
                      lines[i + 1].find_first_not_of(' ') != std::string::npos;
      EXPECT_TRUE(sameLine || nextLine) << "no description: " << lines[i];
    }
    EXPECT_GT(options, 2u) << help->out; // --help, --version and the benchmark's own
  }
}

// A flag's value after "=" or as the next argument is the same value: here a missing file,
// which each binary names when it fails to read it.
TEST(Release, EveryFlagTakesItsValueInBothForms) {
  TempDir tmp = TempDir::create("release").value();
  std::string missing = tmp.path() + "/missing";
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"bpfchain-operator", {"--metrics-address", "127.0.0.1:0", "--kubeconfig"}},
           {"kubectl-bpfchain", {"nodes", "--kubeconfig"}},
           {"bpfchain-agent",
            {"--state-dir", tmp.path(), "--bpffs", tmp.path() + "/bpffs", "--config"}}}) {
    for (bool inlineValue : {false, true}) {
      std::vector<std::string> argv{binary(name)};
      argv.insert(argv.end(), args.begin(), args.end());
      if (inlineValue)
        argv.back() += "=" + missing;
      else
        argv.push_back(missing);
      auto r = runCommand(argv);
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(r->exitCode, 1) << describeCommand(argv) << "\n" << r->err;
      EXPECT_NE(r->err.find(missing), std::string::npos) << describeCommand(argv) << "\n" << r->err;
    }
  }
}

// The one logger's flags (system/log.h): in every binary that logs, in its --help, refused by
// name when wrong, and --log-format=json makes each line one JSON object.
TEST(Release, EveryBinaryThatLogsTakesTheLogFlags) {
  TempDir tmp = TempDir::create("release").value();
  struct Binary {
    std::string name;
    std::vector<std::string> failing; // arguments that fail after the logger is configured
  };
  for (const Binary& b :
       std::vector<Binary>{{"bpfchain-operator", {"--kubeconfig", tmp.path() + "/missing"}},
                           {"bpfchain-agent",
                            {"--config", tmp.path() + "/missing", "--state-dir", tmp.path(),
                             "--bpffs", tmp.path() + "/bpffs"}},
                           {"bpfchain-pkg", {"digest", tmp.path() + "/missing"}}}) {
    std::string bin = kBin + "/" + b.name;
    auto help = runCommand({bin, "--help"});
    ASSERT_TRUE(help.ok()) << help.error().message();
    EXPECT_NE((help->out + help->err).find("--log-format FORMAT"), std::string::npos) << b.name;
    EXPECT_NE((help->out + help->err).find("--log-level LEVEL"), std::string::npos) << b.name;

    auto refused = runCommand({bin, "--log-level=loud"});
    ASSERT_TRUE(refused.ok());
    EXPECT_EQ(refused->exitCode, 2) << b.name;
    EXPECT_NE(refused->err.find("--log-level: want error, warning, info or debug, not \"loud\""),
              std::string::npos)
        << b.name << ": " << refused->err;

    std::vector<std::string> argv{bin, "--log-format", "json"};
    argv.insert(argv.end(), b.failing.begin(), b.failing.end());
    auto failed = runCommand(argv);
    ASSERT_TRUE(failed.ok());
    EXPECT_EQ(failed->exitCode, 1) << b.name << ": " << failed->err;
    std::istringstream lines(failed->err);
    int errors = 0;
    for (std::string line; std::getline(lines, line);) {
      EXPECT_TRUE(std::regex_match(
          line,
          std::regex(R"(\{"ts":"[0-9-]{10}T[0-9:]{8}\.[0-9]{3}Z","level":"[a-z]+","msg":".*\})")))
          << b.name << ": " << line;
      errors += line.find(R"("level":"error")") != std::string::npos &&
                line.find(tmp.path() + "/missing") != std::string::npos;
    }
    EXPECT_EQ(errors, 1) << b.name << ": " << failed->err;
  }
}

TEST(Release, TheImageTagIsTheProjectVersion) {
  auto r = checkCommand({kSource + "/scripts/image.sh", "--version"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(trimmed(r->out), BPFCHAIN_VERSION);
}

TEST(Release, TheChartsAppVersionAndTheManifestsImageAreTheProjectVersion) {
  YAML::Node chart = YAML::LoadFile(kSource + "/charts/bpfchain/Chart.yaml");
  EXPECT_EQ(chart["appVersion"].as<std::string>(), BPFCHAIN_VERSION);
  YAML::Node values = YAML::LoadFile(kSource + "/charts/bpfchain/values.yaml");
  EXPECT_EQ(values["image"]["tag"].as<std::string>(), "") << "image.tag must default to appVersion";
  int images = 0;
  for (const char* file : {"/manifests/20-operator.yaml", "/manifests/30-agent.yaml"}) {
    std::string text = readFile(kSource + file);
    std::regex image(R"(image: (\S+))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), image);
         it != std::sregex_iterator(); ++it, ++images)
      EXPECT_EQ((*it)[1].str(), std::string("ghcr.io/bpfchain/bpfchain:") + BPFCHAIN_VERSION)
          << file;
  }
  EXPECT_EQ(images, 2); // operator, agent (the agent keeps the CNI entry: no init container)
}

TEST(Release, TheChangelogHasASectionForTheVersion) {
  std::string changelog = readFile(kSource + "/CHANGELOG.md");
  EXPECT_NE(changelog.find(std::string("\n## [") + BPFCHAIN_VERSION + "]"), std::string::npos);
}

TEST(Release, TheContainerfileAndImageShBuildFromTheSameDefinition) {
  std::string containerfile = readFile(kSource + "/Containerfile");
  std::string imageSh = readFile(kSource + "/scripts/image.sh");
  // The runtime stage installs the list and makes the root file system with the script; the
  // final image is that file system alone.
  EXPECT_NE(containerfile.find("image/runtime-packages.txt"), std::string::npos);
  EXPECT_NE(containerfile.find("RUN /image/make-rootfs.sh /install/bin /rootfs"),
            std::string::npos);
  EXPECT_NE(containerfile.find("FROM scratch\nCOPY --from=rootfs /rootfs/ /\n"), std::string::npos);
  EXPECT_NE(imageSh.find("image/make-rootfs.sh \"$work/install/usr/bin\""), std::string::npos);
  // Both build the same targets and install them the same way.
  EXPECT_NE(containerfile.find("--target bpfchain-install-set"), std::string::npos);
  EXPECT_NE(imageSh.find("--target bpfchain-install-set"), std::string::npos);
  EXPECT_NE(containerfile.find("cmake --install /build --prefix /usr --strip"), std::string::npos);
  EXPECT_NE(imageSh.find("cmake --install \"$build\" --prefix /usr --strip"), std::string::npos);
}

TEST(Release, TheRuntimePackageListIsWhatTheBinariesLoad) {
  auto r = runCommand({kSource + "/image/make-rootfs.sh", "--check", kBin});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->exitCode, 0) << r->out << r->err;
}

} // namespace
} // namespace bpfchain::testing
