// bpfchain-cni: run by the container runtime with CNI_* variables and the network
// configuration on stdin (cni/plugin.h), or by hand / by the agent's DaemonSet as
// `bpfchain-cni install|uninstall ...` (cni/installer.h).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "cni/installer.h"
#include "cni/plugin.h"
#include "system/command_line.h"

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

// `bpfchain-cni install|uninstall ...`, --help, --version: the command line of a person or the
// agent's DaemonSet. Returns the exit status.
int commandLine(int argc, char** argv) {
  namespace cni = bpfchain::cni;
  bpfchain::cli::CommandLine cl(
      "bpfchain-cni",
      "A CNI plugin: the container runtime runs it with CNI_COMMAND set and the network\n"
      "configuration on stdin, and without arguments. With arguments, it installs or removes\n"
      "itself on a node.\n");
  CLI::App& app = cl.app();
  app.require_subcommand(1);
  cni::InstallOptions options;
  CLI::App* install = app.add_subcommand(
      "install", "copies the binary into --bin-dir and adds its entry to the configuration");
  CLI::App* uninstall = app.add_subcommand(
      "uninstall", "removes every bpfchain-cni entry from --conf-dir, then the binary");
  for (CLI::App* command : {install, uninstall}) {
    command->add_option("--bin-dir", options.binDir, "where the runtime looks for plugins")
        ->type_name("DIR")
        ->required();
    command->add_option("--conf-dir", options.confDir, "the runtime's network configurations")
        ->type_name("DIR")
        ->required();
  }
  install->add_option("--socket", options.socketPath, "the agent's socket (socketPath)")
      ->type_name("PATH");
  install->add_option("--failure-policy", options.failurePolicy, "failurePolicy")
      ->type_name("fail|ignore");
  install->add_option("--log-file", options.logFile, "the plugin's per-call log (logFile)")
      ->type_name("PATH");
  if (auto exit = cl.parse(argc, argv))
    return *exit;
  return install->parsed() ? cni::installCommand(options) : cni::uninstallCommand(options);
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 1)
    return commandLine(argc, argv);

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
