// Prometheus families for the Kubernetes client's metrics hooks (WorkQueueMetrics,
// RequestMetrics), with client-go's metric shapes and a bpfchain_ prefix (DESIGN.md section 1:
// every metric of ours starts with bpfchain_; the labels and meaning are client-go's, so its
// dashboards and alerts port by renaming):
//   bpfchain_workqueue_depth{name}                                gauge
//   bpfchain_workqueue_adds_total{name}                           counter
//   bpfchain_workqueue_queue_duration_seconds{name}               histogram, added -> taken
//   bpfchain_workqueue_work_duration_seconds{name}                histogram, taken -> done
//   bpfchain_workqueue_retries_total{name}                        counter
//   bpfchain_workqueue_unfinished_work_seconds{name}              gauge, at scrape time
//   bpfchain_workqueue_longest_running_processor_seconds{name}    gauge, at scrape time
//   bpfchain_rest_client_requests_total{code,method}              counter; code "<error>" when
//                                                                 no response came
//   bpfchain_rest_client_request_duration_seconds{verb}           histogram
// Series exist from creation (zero), so rate() sees the first increment.
#pragma once

#include <memory>
#include <string>

#include "k8s/request_metrics.h"
#include "k8s/work_queue.h"

namespace prometheus {
class Collectable;
class Registry;
} // namespace prometheus

namespace bpfchain::k8s {

// A queue's metrics, labelled name=`name`, in `registry` (kept alive by the result). The
// in-flight gauges are served by the returned collectable (add it to the metrics server).
struct QueueMetricsHandle {
  std::shared_ptr<WorkQueueMetrics> metrics;
  std::shared_ptr<prometheus::Collectable> inFlight;
};
QueueMetricsHandle makeWorkQueueMetrics(std::shared_ptr<prometheus::Registry> registry,
                                        const std::string& name);

// The API client's metrics in `registry` (kept alive by the result); pass the result to
// setRequestMetrics().
std::shared_ptr<RequestMetrics> makeRequestMetrics(std::shared_ptr<prometheus::Registry> registry);

} // namespace bpfchain::k8s
