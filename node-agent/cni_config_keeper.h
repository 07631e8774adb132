// Keeps bpfchain-cni's entry in the node's CNI configuration while the agent runs. A one-shot
// installer is not enough: the primary CNI (or whoever manages the node) may rewrite its
// conflist at any time, and pods started while the entry is missing run without their chains.
// The keeper watches the configuration directory (inotify, and a resync every 30 s) and puts
// the entry back whenever it is missing (cni::install: idempotent, atomic renames, so its own
// writes settle at once). Whether the entry is present is the gauge
// bpfchain_cni_entry_present (1 or 0) and a log line on each change.
// stop(removeEntry): with removeEntry, the entry (and the plugin binary) are taken out, so no
// new pod on the node waits for a plugin that nobody serves (an uninstall); without it they
// stay for the next agent (an upgrade or restart).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "cni/installer.h"
#include "system/fd.h"
#include "system/result.h"

namespace prometheus {
class Collectable;
class Gauge;
class Registry;
} // namespace prometheus

namespace bpfchain::agent {

class CniConfigKeeper {
public:
  static Result<std::unique_ptr<CniConfigKeeper>> start(cni::InstallOptions options);
  ~CniConfigKeeper();
  CniConfigKeeper(const CniConfigKeeper&) = delete;
  CniConfigKeeper& operator=(const CniConfigKeeper&) = delete;

  std::weak_ptr<prometheus::Collectable> collectable() const;
  bool present() const { return present_; }
  // Stops watching; with removeEntry, runs cni::uninstall. Idempotent.
  void stop(bool removeEntry);

private:
  CniConfigKeeper(cni::InstallOptions options, FD inotify);
  void run();
  void ensure();

  cni::InstallOptions options_;
  FD inotify_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* gauge_ = nullptr;
  std::atomic<bool> present_{false};
  std::atomic<bool> stopping_{false};
  std::string lastProblem_;
  std::thread thread_;
};

} // namespace bpfchain::agent
