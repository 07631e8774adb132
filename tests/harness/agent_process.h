// A bpfchain-agent process for e2e tests (one per simulated node), and the packages it loads,
// built with bpfchain-pkg from the project's BPF objects.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "harness/process.h"
#include "system/result.h"

namespace bpfchain::testing {

struct AgentOptions {
  std::string config;     // standalone: --config
  std::string nodeName;   // cluster mode: --node-name
  std::string kubeconfig; // cluster mode
  std::string netnsPath;  // --netns: the simulated node's namespace
  std::string bpffs;      // --bpffs
  std::string stateDir;   // --state-dir
  std::string socket;     // --socket
  std::vector<std::string> extra;

  // A standalone agent running `config` on the namespace at `netnsPath`, pinning under
  // `<bpffsMount>/bpfchain`, with its state (<dir>/state) and socket (<dir>/agent.sock) in
  // `dir`.
  static AgentOptions standalone(const std::string& config, const std::string& netnsPath,
                                 const std::string& bpffsMount, const std::string& dir) {
    AgentOptions o;
    o.config = config;
    o.netnsPath = netnsPath;
    o.bpffs = bpffsMount + "/bpfchain";
    o.stateDir = dir + "/state";
    o.socket = dir + "/agent.sock";
    return o;
  }
};

class AgentProcess {
public:
  // Starts the agent and waits until it serves metrics (its log says on which port).
  static Result<std::unique_ptr<AgentProcess>> start(const AgentOptions& options,
                                                     const std::string& logFile);
  ChildProcess& process() { return process_; }
  uint16_t metricsPort() const { return port_; }
  // GET /metrics, /readyz, ...: the body, or an error for a failed request or a non-200.
  Result<std::string> get(const std::string& path) const;
  // The log so far.
  std::string log() const;

private:
  AgentProcess(ChildProcess process, std::string logFile, uint16_t port)
      : process_(std::move(process)), logFile_(std::move(logFile)), port_(port) {}
  ChildProcess process_;
  std::string logFile_;
  uint16_t port_;
};

struct BuiltPackage {
  std::string path;
  std::string url; // file://
  std::string sha256;
};

// bpfchain-pkg build of one program of the project's BPF objects (build/bpf/<object>.bpf.o).
Result<BuiltPackage> buildPackage(const std::string& dir, const std::string& name,
                                  const std::string& object, const std::string& entry,
                                  const std::string& hook, const std::string& nextMap);

// Repeats `check` every 50 ms until it returns true or `timeoutMs` passes; returns its last answer.
bool eventually(const std::function<bool()>& check, int timeoutMs = 20000);

} // namespace bpfchain::testing
