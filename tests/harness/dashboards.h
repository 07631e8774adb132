// The dashboards and alert rules of dashboards/, as tests read them: every PromQL expression
// with where it comes from, Grafana's variables replaced so Prometheus can run it, and the
// metric names an expression reads.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "system/result.h"

namespace bpfchain::testing {

struct PromQuery {
  std::string where; // "cluster-overview.json: panel \"Agents up\" A", "alert BpfchainAgentDown"
  std::string expr;  // runnable: Grafana variables replaced
};

// dashboards/ of the source tree.
std::string dashboardsDir();
// The *.json dashboards, sorted.
std::vector<std::string> dashboardFiles();
// Every target expression of every dashboard panel, and every alert expression.
Result<std::vector<PromQuery>> dashboardQueries();
Result<std::vector<PromQuery>> alertQueries();
// Grafana's variables made concrete: $__rate_interval 5m, $__interval 1m, $__range 1h, and
// every template variable ($chain, ${node}) the regex ".*" (they are only used with =~).
std::string substituteGrafanaVariables(const std::string& expr);
// The metric names `expr` selects (an expression Prometheus accepts; strings, label matchers,
// ranges, grouping label lists, function and aggregation names and keywords are not metric
// names).
std::set<std::string> metricNamesOf(const std::string& expr);
// Metric names in a Prometheus text exposition: sample names, and for a histogram or summary
// family its _bucket, _sum and _count series too.
std::set<std::string> exportedMetricNames(const std::string& exposition);

} // namespace bpfchain::testing
