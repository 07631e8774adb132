// The agent's Prometheus metrics (DESIGN.md section 7). Kernel-side values are read at scrape
// time from descriptors the reconciler publishes after each pass, so a scrape never touches the
// reconciler's state:
//   bpfchain_root_runs_total / bpfchain_root_run_seconds_total {interface,hook}
//       the root's run count and time (BPF_ENABLE_STATS); tail-called programs fold into the
//       root, so this is the whole chain's cost per packet
//   bpfchain_program_packets_total {chain,program,interface,hook,verdict}
//       from a program's chain.h stats map (a map named *_stats); verdict "seen" = entered
//   bpfchain_monitor_map_value {chain,program,interface,hook,map,key,aggregator}
//       (a struct value gives one series per integer member, label field=<member>)
//       scalar: the value (summed over CPUs for per-CPU maps), sum: over CPUs, avg: mean over
//       CPUs, max-rate: the largest per-second increase over the last 20 one-second samples
//   bpfchain_apply_duration_seconds {chain}, bpfchain_errors_total {chain,reason},
//   bpfchain_package_fetches_total {result}, bpfchain_agent_info {version,kernel,tcx,xdp_link},
//   bpfchain_chains {phase}
//   bpfchain_chain_info {chain,generation,phase,reason} = 1, one series per chain in the node's
//       config (the generation phase and reason describe; reason "" when Ready)
//   bpfchain_cni_requests_total {command,result,reason}, bpfchain_cni_request_duration_seconds
//       {command}: requests the CNI plugin sent over the agent socket, by CNI command (ADD, DEL,
//       CHECK, STATUS, GC); result success | error, reason the typed error kind ("" on success)
//   bpfchain_rest_client_* (common/k8s/k8s_metrics.h) when running against a cluster
// Header without prometheus-cpp: it is only in agent_metrics.cpp.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "node-agent/node_config.h"
#include "system/fd.h"
#include "system/result.h"

namespace prometheus {
class Collectable;
}

namespace bpfchain::k8s {
class RequestMetrics;
}

namespace bpfchain::agent {

// One integer inside a map value: the whole value, or a member of a struct value.
struct ValueField {
  std::string name; // "" for a plain integer value
  uint32_t offset = 0;
  uint32_t size = 0; // 1, 2, 4 or 8
};

struct ExportedMonitor {
  MonitorMapDecl decl;
  std::vector<ValueField> fields;
  std::shared_ptr<FD> map;  // null when the map could not be opened (error says why)
  std::vector<uint8_t> key; // encoded by the map's BTF key type
  std::string error;
};

struct ExportedProgram {
  std::string chain;
  std::string program;
  std::shared_ptr<FD> stats; // the chain.h stats map, or null
  std::vector<ExportedMonitor> monitors;
};

struct ExportedAttachment {
  std::string interface;
  std::string hook;
  std::shared_ptr<FD> root;
  std::vector<ExportedProgram> programs;
};

// One chain of the node's config as the last pass left it.
struct ChainState {
  std::string chain;
  int64_t generation = 0;
  std::string phase;
  std::string reason;
};

struct PackageCounters {
  uint64_t fetches = 0;
  uint64_t cacheHits = 0;
  uint64_t failures = 0;
};

// max-rate: the largest increase between consecutive one-second samples. A sample below its
// predecessor is a reset (a program upgrade starts a new map; a counter wrapped): the counter
// counted from zero, so that step's increase is the sample itself (as Prometheus's rate()).
double maxRate(const std::deque<uint64_t>& samples);

class AgentMetrics {
public:
  struct Info {
    std::string version;
    std::string kernel;
    bool tcx = false;
    bool xdpLink = false;
  };
  explicit AgentMetrics(Info info);
  ~AgentMetrics();
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  // Everything, for MetricsServer::add().
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables() const;

  void publish(std::vector<ExportedAttachment> attachments);
  void observeApply(const std::string& chain, double seconds);
  void countError(const std::string& chain, const std::string& reason);
  // Replaces bpfchain_chains and bpfchain_chain_info with `chains`.
  void setChains(const std::vector<ChainState>& chains);
  // One request served on the agent socket; `reason` "" = success.
  void observeCni(const std::string& command, const std::string& reason, double seconds);
  // For k8s::setRequestMetrics(): the API client's families, served with the others.
  std::shared_ptr<k8s::RequestMetrics> requestMetrics() const;
  void setPackageCounters(std::function<PackageCounters()> counters);

  // Encodes a monitor map's key text by the map's BTF key type.
  static Result<std::vector<uint8_t>> encodeKey(int mapFd, const std::string& text);
  // The integers a map's value holds, by its BTF value type (or its size, without BTF).
  static Result<std::vector<ValueField>> valueFields(int mapFd);
  // True for a chain.h statistics map (PERCPU_ARRAY of 16 __u64 slots).
  static bool isStatsMap(int mapFd);
  // A chain.h stats map's counts summed over CPUs, by verdict name for `hook` ("seen" first,
  // then the verdicts the program gave, "other" last); slots that read back 0 are left out,
  // except "seen".
  static std::vector<std::pair<std::string, uint64_t>> verdictCounts(int statsFd,
                                                                     const std::string& hook);

private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

} // namespace bpfchain::agent
