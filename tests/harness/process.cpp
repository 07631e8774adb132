#include "harness/process.h"

#include <array>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "system/fd.h"

extern char** environ;

namespace bpfchain::testing {
namespace {

Result<std::array<FD, 2>> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return systemError(errno, "pipe2");
  return std::array<FD, 2>{FD(fds[0]), FD(fds[1])};
}

std::string tail(const std::string& text, size_t max) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

} // namespace

std::string describeCommand(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& arg : argv)
    line += (line.empty() ? "" : " ") + arg;
  return line;
}

Result<CommandOutput> runCommand(const std::vector<std::string>& argv) {
  auto outPipe = makePipe();
  if (!outPipe)
    return std::move(outPipe).error();
  auto errPipe = makePipe();
  if (!errPipe)
    return std::move(errPipe).error();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, (*outPipe)[1].get(), 1);
  posix_spawn_file_actions_adddup2(&actions, (*errPipe)[1].get(), 2);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return systemError(rc, "run " + describeCommand(argv));
  (*outPipe)[1].reset();
  (*errPipe)[1].reset();

  // Drain both pipes together: a child that fills one while we block on the other would hang.
  CommandOutput result;
  std::array<pollfd, 2> fds{pollfd{(*outPipe)[0].get(), POLLIN, 0},
                            pollfd{(*errPipe)[0].get(), POLLIN, 0}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  int open = 2;
  while (open > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, n);
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open;
      }
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return systemError(errno, "wait for " + describeCommand(argv));
  }
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Result<CommandOutput> checkCommand(const std::vector<std::string>& argv) {
  return checkExit(argv, runCommand(argv));
}

Result<CommandOutput> checkExit(const std::vector<std::string>& argv,
                                Result<CommandOutput> result) {
  if (result && result->exitCode != 0)
    return invalidError(describeCommand(argv) + ": exit " + std::to_string(result->exitCode) +
                        ": " + tail(result->err.empty() ? result->out : result->err, 2000));
  return result;
}

Result<ChildProcess> ChildProcess::spawn(const std::vector<std::string>& argv,
                                         const std::string& logFile) {
  FD log(::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log)
    return systemError(errno, "open " + logFile);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  // Said in the log when exec fails (the child may only make async-signal-safe calls): a
  // binary being relinked (ETXTBSY) or missing otherwise looks like a process that never logs.
  std::string execFailed = "spawn: cannot exec " + argv.front() + "\n";
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    return systemError(errno, "fork for " + describeCommand(argv));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) // the parent died before prctl
      ::_exit(1);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::execvp(args[0], args.data());
    ssize_t ignored = ::write(2, execFailed.data(), execFailed.size());
    (void)ignored;
    ::_exit(127);
  }
  return ChildProcess(pid);
}

void ChildProcess::kill(int signal) const {
  if (pid_ > 0)
    ::kill(pid_, signal);
}

bool ChildProcess::running() {
  int status = 0;
  if (pid_ <= 0)
    return false;
  if (::waitpid(pid_, &status, WNOHANG) != pid_)
    return true;
  pid_ = -1;
  exitStatus_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

int ChildProcess::stop(int timeoutMs) {
  if (pid_ <= 0)
    return exitStatus_;
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int waited = 0; waited < timeoutMs; waited += 20) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    ::usleep(20000);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return 128 + SIGKILL;
}

ChildProcess::~ChildProcess() {
  stop();
}

} // namespace bpfchain::testing
