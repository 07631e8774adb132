// The binaries' one command line (system/command_line.h): both flag forms, repeatable flags,
// the logger's flags, --help and --version, and usage errors that name the flag (exit 2).
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

#include "system/command_line.h"
#include "system/log.h"
#include "system/version.h"

namespace bpfchain {
namespace {

struct Parsed {
  std::optional<int> exit;
  std::string out, err;
};

// Parses `args` (argv[0] excluded) with `cl`, capturing what it prints.
Parsed parse(cli::CommandLine& cl, std::vector<std::string> args) {
  args.insert(args.begin(), cl.program());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Parsed p;
  p.exit = cl.parse(static_cast<int>(args.size()), argv.data());
  p.out = ::testing::internal::GetCapturedStdout();
  p.err = ::testing::internal::GetCapturedStderr();
  return p;
}

class CommandLineTest : public ::testing::Test {
protected:
  void SetUp() override { saved_ = log::options(); }
  void TearDown() override { log::configure(saved_); }

  // A binary with a value flag, a switch, a repeatable flag, a positional and the log flags.
  std::unique_ptr<cli::CommandLine> binary() {
    auto cl = std::make_unique<cli::CommandLine>("bin", "Does things.");
    cl->app().add_option("--kubeconfig", kubeconfig, "a file")->type_name("FILE");
    cl->app().add_flag("--leader-elect", leaderElect, "a switch");
    cl->app().add_option("--trusted-key", keys, "repeatable")->type_name("FILE");
    cl->app().add_option("--workers", workers, "a number")->check(cli::integerIn(1, 100));
    cl->app().add_option("FILE", file, "a positional");
    cl->logFlags();
    return cl;
  }

  std::string kubeconfig, file;
  bool leaderElect = false;
  std::vector<std::string> keys;
  int workers = 8;
  log::Options saved_;
};

TEST_F(CommandLineTest, TakesBothFlagFormsAndOneValuePerRepeatedFlag) {
  auto cl = binary();
  auto p = parse(*cl, {"--kubeconfig=k", "--trusted-key", "a", "--trusted-key=b", "--workers", "3",
                       "--leader-elect", "f"});
  EXPECT_EQ(p.exit, std::nullopt) << p.err;
  EXPECT_EQ(kubeconfig, "k");
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(workers, 3);
  EXPECT_TRUE(leaderElect);
  EXPECT_EQ(file, "f"); // after a repeatable flag's value: not taken as a second value
  auto again = binary();
  EXPECT_EQ(parse(*again, {"--leader-elect=false", "--kubeconfig", "x", "--kubeconfig", "y"}).exit,
            std::nullopt);
  EXPECT_FALSE(leaderElect);
  EXPECT_EQ(kubeconfig, "y"); // the last wins
}

TEST_F(CommandLineTest, ALogFlagConfiguresTheLogger) {
  auto cl = binary();
  auto p = parse(*cl, {"--kubeconfig", "k", "--log-format=json", "--log-level", "debug"});
  EXPECT_EQ(p.exit, std::nullopt) << p.err;
  EXPECT_EQ(kubeconfig, "k");
  EXPECT_EQ(log::options().format, log::Format::Json);
  EXPECT_EQ(log::options().level, log::Level::Debug);
}

TEST_F(CommandLineTest, UsageErrorsExitTwoAndNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--log-level", "verbose"},
            "bin: --log-level: want error, warning, info or debug, not \"verbose\"\n"},
           {{"--log-format=xml"}, "bin: --log-format: want text or json, not \"xml\"\n"},
           {{"--log-format"}, "bin: --log-format needs a value\n"},
           {{"--bogus=1"}, "bin: unknown option --bogus\n"},
           {{"f", "g"}, "bin: unexpected argument g\n"},
           {{"--workers", "0"}, "bin: --workers: needs a number from 1 to 100, not \"0\"\n"},
           {{"--workers", "x"}, "bin: --workers: needs a number from 1 to 100, not \"x\"\n"}}) {
    auto cl = binary();
    auto p = parse(*cl, c.args);
    EXPECT_EQ(p.exit, cli::kExitUsage) << c.message;
    EXPECT_EQ(p.err.rfind(c.message, 0), 0u) << p.err;
    EXPECT_EQ(p.out, "");
  }
  EXPECT_EQ(log::options().level, saved_.level) << "a refused command line configures nothing";
}

TEST_F(CommandLineTest, HelpAndVersionExitZeroOnStdout) {
  auto cl = binary();
  auto help = parse(*cl, {"--help"});
  EXPECT_EQ(help.exit, 0);
  EXPECT_EQ(help.out.rfind("usage: bin [OPTIONS] [FILE]\nDoes things.\n", 0), 0u) << help.out;
  for (const char* flag : {"--kubeconfig FILE", "--log-level LEVEL", "--log-format FORMAT",
                           "--version", "--trusted-key FILE"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag << "\n" << help.out;
  auto again = binary();
  auto version = parse(*again, {"--version"});
  EXPECT_EQ(version.exit, 0);
  EXPECT_EQ(version.out, std::string("bin ") + kVersion + "\n");
}

TEST_F(CommandLineTest, CommandsAreNamedInErrorsAndRequiredWhenAsked) {
  auto commands = [this] {
    auto cl = std::make_unique<cli::CommandLine>("tool", "Has commands.");
    cl->app().require_subcommand(1);
    cl->app().add_subcommand("build", "builds")->add_option("--name", file)->required();
    return cl;
  };
  auto none = commands();
  auto p = parse(*none, {});
  EXPECT_EQ(p.exit, cli::kExitUsage);
  EXPECT_EQ(p.err.rfind("usage: tool [OPTIONS] SUBCOMMAND\n", 0), 0u) << p.err;
  auto unknown = commands();
  EXPECT_EQ(parse(*unknown, {"frobnicate"}).err.rfind("tool: unknown command frobnicate\n", 0), 0u);
  auto missing = commands();
  p = parse(*missing, {"build"});
  EXPECT_EQ(p.exit, cli::kExitUsage);
  EXPECT_EQ(p.err.rfind("tool build: --name is required\n", 0), 0u) << p.err;
  auto bogus = commands();
  EXPECT_EQ(parse(*bogus, {"build", "--bogus"}).err.rfind("tool build: unknown option --bogus", 0),
            0u);
}

} // namespace
} // namespace bpfchain
