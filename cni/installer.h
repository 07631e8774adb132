// `bpfchain-cni install|uninstall`: what the agent's DaemonSet runs on each node to put the
// plugin into the node's CNI configuration, as Istio's install-cni does for its chained plugin.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "system/result.h"

namespace bpfchain::cni {

struct InstallOptions {
  std::string binDir;  // where the runtime looks for plugins (/opt/cni/bin)
  std::string confDir; // the runtime's network configurations (/etc/cni/net.d)
  // Plugin keys written into the entry; unset ones are left to the plugin's defaults (or to
  // what an existing entry says).
  std::optional<std::string> socketPath;
  std::optional<std::string> failurePolicy;
  std::optional<std::string> logFile;
  std::string selfPath = "/proc/self/exe"; // the binary to install
};

struct InstallReport {
  bool binaryChanged = false;
  std::string confFile; // the configuration that holds the entry now
  bool confChanged = false;
};

// Copies the binary into binDir (atomically, only when it differs), then adds a bpfchain-cni
// entry at the end of the `plugins` of the runtime's network configuration: the first of
// confDir's *.conf, *.conflist and *.json files in lexical order, which is the one kubelet's
// runtimes use. A single-plugin .conf/.json is converted into a .conflist of the same name. An
// entry that is already there is updated in place when the options differ; a second run with
// the same options writes nothing. Configurations are replaced by an atomic rename.
Result<InstallReport> install(const InstallOptions& options);

struct UninstallReport {
  std::vector<std::string> confFiles; // configurations an entry was removed from
  bool binaryRemoved = false;
};

// Removes every bpfchain-cni entry from confDir's configurations, then the binary from binDir.
Result<UninstallReport> uninstall(const InstallOptions& options);

// `bpfchain-cni install|uninstall`: does it, prints what changed on stdout or the error on
// stderr; returns the exit status (0, or 1 on failure).
int installCommand(const InstallOptions& options);
int uninstallCommand(const InstallOptions& options);

} // namespace bpfchain::cni
