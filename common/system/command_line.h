// Every bpfchain binary's and benchmark's command line, on CLI11 (Debian's libcli11-dev).
//
// A CommandLine is a CLI::App the binary declares its flags on, plus the project's conventions:
//   --help     the usage (the binary's synopsis and every flag), on stdout, exit 0
//   --version  "<program> <version>" (system/version.h), on stdout, exit 0
//   --flag=value and --flag value alike; a repeatable flag takes one value per occurrence
//   a usage error: "<program>[ <command>]: <message naming the flag>" on stderr, exit 2
//   (messages: "unknown option --x", "--x needs a value", "--x is required",
//   "unexpected argument y", "unknown command y", or the flag's own check)
// logFlags() adds the one logger's --log-level and --log-format (system/log.h), which
// configure it when the parse succeeds.
//
// Include it only from main files: CLI11's headers are large.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace bpfchain::cli {

inline constexpr int kExitUsage = 2;

class CommandLine {
public:
  // `synopsis`: the help's first lines after "usage: <program> ..." (what the binary does,
  // its modes); the flags' lines are CLI11's.
  CommandLine(std::string program, const std::string& synopsis);

  CLI::App& app() { return app_; }
  const std::string& program() const { return program_; }

  // --log-level LEVEL and --log-format FORMAT, on the app and every subcommand added before.
  CommandLine& logFlags();

  // Parses: nullopt to go on, else the exit status to return at once (0 after --help or
  // --version, kExitUsage after a usage error, which it printed).
  std::optional<int> parse(int argc, char** argv);

  // A usage error the binary finds after the parse (flags that need each other, a value out
  // of its set): prints it as parse() does and returns kExitUsage.
  int usageError(const std::string& message) const;

private:
  int parseError(const CLI::ParseError& error) const;
  std::string extrasMessage() const; // of the app or a selected subcommand

  std::string program_;
  CLI::App app_;
  std::string logLevel_;
  std::string logFormat_;
};

// A check for add_option(...)->check(): an integer in [min, max], else "needs a number from
// min to max, not "<value>"". CLI11's own range check says less about non-numbers.
CLI::Validator integerIn(long min, long max);

} // namespace bpfchain::cli
