// Runs a command to completion and captures what it printed. For test set-up only: commands
// are trusted, argv is passed without a shell.
#pragma once

#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "system/result.h"

namespace bpfchain::testing {

struct CommandOutput {
  int exitCode = 0; // the exit status, or 128 + signal when a signal ended it
  std::string out;
  std::string err;
};

// Fails only when the command cannot be started; a non-zero exit is in exitCode.
Result<CommandOutput> runCommand(const std::vector<std::string>& argv);

// Like runCommand, but a non-zero exit is an error naming the command and the tail of stderr.
Result<CommandOutput> checkCommand(const std::vector<std::string>& argv);
// What checkCommand makes of runCommand(argv)'s `result`.
Result<CommandOutput> checkExit(const std::vector<std::string>& argv, Result<CommandOutput> result);

// argv joined with spaces, for messages.
std::string describeCommand(const std::vector<std::string>& argv);

// A long-running program a test starts (an operator, an agent). Its output goes to `logFile`;
// it gets SIGKILL if the test process dies (PR_SET_PDEATHSIG), and SIGTERM, then SIGKILL after
// 10 s, when the object goes out of scope.
class ChildProcess {
public:
  static Result<ChildProcess> spawn(const std::vector<std::string>& argv,
                                    const std::string& logFile);
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), exitStatus_(other.exitStatus_) {}
  ChildProcess& operator=(ChildProcess&&) = delete;

  pid_t pid() const { return pid_; }
  void kill(int signal) const;
  // False once the process has exited (it is reaped then: kill(pid, 0) alone cannot tell an
  // exited child that nobody waited for from a running one).
  bool running();
  // Sends SIGTERM and waits up to `timeoutMs` (then SIGKILL); returns the exit status.
  int stop(int timeoutMs = 10000);

private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int exitStatus_ = -1; // once reaped by running()
};

} // namespace bpfchain::testing
