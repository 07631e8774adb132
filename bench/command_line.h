// The command line the benchmarks share, on the binaries' one (system/command_line.h, CLI11):
// --help, --version, --flag=value and --flag value; and their exits: 1 when a run fails (die,
// inside run()), 2 when the command line is wrong (a usage error naming the flag, or usage()).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <utility>

#include "system/command_line.h"

namespace bpfchain::bench {

class CommandLine {
public:
  // `synopsis`: the help's lines after "usage: <program> [OPTIONS]".
  CommandLine(std::string program, std::string synopsis)
      : program_(std::move(program)), synopsis_(std::move(synopsis)) {}

  // What die() throws. run() catches it once the stack has unwound, so every owner on it (a
  // control plane, network namespaces, a bpffs mount, a temporary directory, child processes)
  // has cleaned up: a benchmark that fails leaves nothing behind for the next test run's
  // leftover check.
  struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // Ends the run with `message`. Call it on the thread run() runs on, or inside parallel().
  [[noreturn]] void die(const std::string& message) const { throw Failure(message); }

  // A benchmark's main: `body`'s exit status, or 1 (the message said on stderr) when it died.
  int run(const std::function<int()>& body) const {
    try {
      return body();
    } catch (const Failure& failure) {
      std::fprintf(stderr, "%s: %s\n", program_.c_str(), failure.what());
      return 1;
    }
  }
  // run() for a benchmark that needs root for `what` (e.g. "network namespaces, BPF"): 0 when
  // `body` returns.
  int runAsRoot(const std::string& what, const std::function<void()>& body) const {
    return run([&] {
      if (::geteuid() != 0)
        die("needs root (" + what + ")");
      body();
      return 0;
    });
  }

  // A usage error found after parse() (values that do not fit together).
  [[noreturn]] void usage(const std::string& why = "flags out of range") const {
    std::fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", program_.c_str(), why.c_str(),
                 program_.c_str());
    std::exit(cli::kExitUsage);
  }

  // `flags` declares the flags on the CLI11 app; then the arguments are parsed into them. Exits
  // 0 after --help or --version, 2 on a usage error.
  void parse(int argc, char** argv, const std::function<void(CLI::App&)>& flags) const {
    cli::CommandLine commandLine(program_, synopsis_);
    flags(commandLine.app());
    if (auto exit = commandLine.parse(argc, argv))
      std::exit(*exit);
  }

private:
  std::string program_;
  std::string synopsis_;
};

} // namespace bpfchain::bench
