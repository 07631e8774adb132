// bpfchain-cni: run by the container runtime with CNI_* variables and the network
// configuration on stdin (cni/plugin.h), or by hand / by the agent's DaemonSet as
// `bpfchain-cni install|uninstall ...` (cni/installer.h).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

#include "cni/installer.h"
#include "cni/plugin.h"
#include "system/version.h"

namespace {

// A network configuration is a few KiB; anything near this is not one.
constexpr size_t kMaxStdin = 16 << 20;

bool readStdin(std::string& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0)
      return true;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxStdin)
      return false;
  }
}

} // namespace

int main(int argc, char** argv) {
  if (bpfchain::answerVersion(argc, argv, "bpfchain-cni"))
    return 0;
  if (argc > 1) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args[0] == "install" || args[0] == "uninstall")
      return bpfchain::cni::installerMain(args);
    std::fputs("bpfchain-cni is a CNI plugin: the container runtime runs it with CNI_COMMAND set "
               "and the network configuration on stdin.\n"
               "usage: bpfchain-cni install --bin-dir DIR --conf-dir DIR [--socket PATH]\n"
               "                            [--failure-policy fail|ignore] [--log-file PATH]\n"
               "       bpfchain-cni uninstall --bin-dir DIR --conf-dir DIR\n",
               stderr);
    return args[0] == "--help" || args[0] == "-h" ? 0 : 2;
  }

  bpfchain::cni::Invocation invocation;
  for (const char* key :
       {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"})
    if (const char* value = std::getenv(key))
      invocation.env.emplace(key, value);
  if (!readStdin(invocation.stdinText)) {
    std::fputs("{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"cannot read the network "
               "configuration from stdin\"}",
               stdout);
    return 1;
  }
  auto outcome = bpfchain::cni::run(invocation);
  if (!outcome.stdoutText.empty())
    std::fwrite(outcome.stdoutText.data(), 1, outcome.stdoutText.size(), stdout);
  return outcome.exitCode;
}
