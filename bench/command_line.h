// The command line the benchmarks share: "--flag VALUE" and "--switch" arguments, a usage text,
// and their exits: 1 when a run fails (die), 2 when the command line is wrong (usage).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>

namespace bpfchain::bench {

class CommandLine {
public:
  // The next argument, as the current flag's value; usage() when there is none.
  using Value = std::function<std::string()>;

  CommandLine(std::string program, std::string usage)
      : program_(std::move(program)), usage_(std::move(usage)) {}

  [[noreturn]] void die(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n", program_.c_str(), message.c_str());
    std::exit(1);
  }

  [[noreturn]] void usage() const {
    std::fprintf(stderr, "usage: %s %s\n", program_.c_str(), usage_.c_str());
    std::exit(2);
  }

  // Calls `flag(argument, value)` for each argument in turn; an argument it does not know
  // (it returns false) is a usage error.
  void parse(int argc, char** argv,
             const std::function<bool(const std::string&, const Value&)>& flag) const {
    for (int i = 1; i < argc; ++i) {
      Value value = [&]() -> std::string {
        if (i + 1 >= argc)
          usage();
        return argv[++i];
      };
      if (!flag(argv[i], value))
        usage();
    }
  }

private:
  std::string program_;
  std::string usage_;
};

} // namespace bpfchain::bench
