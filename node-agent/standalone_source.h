// Standalone mode: the spec is a local YAML file (a BpfNodeConfig `spec`, or a whole
// BpfNodeConfig), re-read whenever it changes (inotify on its directory, so editors that
// replace the file by a rename are seen too). A file that does not parse keeps the previous
// spec running; the error is logged and shown in the status file. Status goes to a YAML file
// (<state-dir>/status.yaml) and, when it changes, to the log.
#pragma once
#include <memory>
#include <mutex>
#include <thread>

#include "node-agent/spec_source.h"
#include "system/fd.h"

namespace bpfchain::agent {

class StandaloneSource : public SpecSource {
public:
  // Fails when the file cannot be read or parsed at start.
  static Result<std::unique_ptr<StandaloneSource>> create(std::string path, std::string statusPath);
  ~StandaloneSource() override;
  void start(std::function<void()> changed) override;
  void stop() override;
  std::optional<NodeSpec> current() override;
  bool report(const NodeStatus& status) override;
  std::optional<std::string> notReady() const override;
  // Without a cluster there are no labels: a pods chain selects every pod when both of its
  // selectors are empty, and no pod otherwise.
  PodSelector podSelector() override;
  // Any pod: the chains that select every pod are loaded ahead.
  std::vector<std::pair<std::string, std::string>> expectedPods() override { return {{"", ""}}; }

private:
  StandaloneSource(std::string path, std::string statusPath, NodeSpec spec)
      : path_(std::move(path)), statusPath_(std::move(statusPath)), spec_(std::move(spec)) {}
  void watch(const std::function<void()>& changed);
  void reload();

  std::string path_;
  std::string statusPath_;
  mutable std::mutex mu_;
  NodeSpec spec_;
  std::string configError_;
  std::string lastStatus_;
  FD stopEvent_;
  std::thread thread_;
};

// The status as YAML (the BpfNodeConfig status format), also used by tests and logs.
std::string statusYaml(const NodeStatus& status, const std::string& configError);

} // namespace bpfchain::agent
