// What the agent's metrics export of what runs: per instance its root, each program's chain.h
// stats map and its monitorMaps, handed to AgentMetrics, which reads them from the kernel at
// scrape time. A view: it reads the instances and feeds the metrics only. A monitor map that
// cannot be exported is logged and counted (MonitorMapInvalid) once; a chain's status learns
// of it from monitorProblems(), which asks the kernel itself, with or without metrics.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "node-agent/agent_metrics.h"
#include "node-agent/instance_executor.h"

namespace bpfchain::agent {

class MetricsView {
public:
  explicit MetricsView(AgentMetrics& metrics) : metrics_(metrics) {}
  void publish(const std::map<std::string, std::unique_ptr<Instance>>& instances);

private:
  AgentMetrics& metrics_;
  std::set<std::string> reported_; // monitor map problems logged and counted already
};

// Per chain, the first of its monitorMaps that cannot be exported: "monitorMaps of <program
// id>: map <map>: <why>; not exported". The chain runs; its status says what is not exported.
std::map<std::string, std::string>
monitorProblems(const std::map<std::string, std::unique_ptr<Instance>>& instances);

// chain.h's stats map of a running program, by its naming convention (a map called *_stats).
std::optional<FD> openStatsMap(const dataplane::Chain& chain, const std::string& programId,
                               const std::string& dir);

} // namespace bpfchain::agent
