// Runs a command to completion and captures what it printed. For test set-up only: commands
// are trusted, argv is passed without a shell.
#pragma once

#include <string>
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

// argv joined with spaces, for messages.
std::string describeCommand(const std::vector<std::string>& argv);

} // namespace bpfchain::testing
