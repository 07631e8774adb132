#include "k8s/k8s_metrics.h"

#include <mutex>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace bpfchain::k8s {
namespace {

// client-go's workqueue buckets: 10^-8 .. 10^1 seconds, exponential by 10.
prometheus::Histogram::BucketBoundaries queueBuckets() {
  return {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
}

// client-go's rest client latency buckets.
prometheus::Histogram::BucketBoundaries requestBuckets() {
  return {0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60};
}

class PrometheusQueueMetrics final : public WorkQueueMetrics, public prometheus::Collectable {
public:
  PrometheusQueueMetrics(std::shared_ptr<prometheus::Registry> owner, const std::string& name)
      : owner_(std::move(owner)), name_(name), depth_(prometheus::BuildGauge()
                                                          .Name("bpfchain_workqueue_depth")
                                                          .Help("Current depth of the work queue.")
                                                          .Register(*owner_)
                                                          .Add({{"name", name}})),
        adds_(prometheus::BuildCounter()
                  .Name("bpfchain_workqueue_adds_total")
                  .Help("Total number of adds handled by the work queue.")
                  .Register(*owner_)
                  .Add({{"name", name}})),
        queued_(prometheus::BuildHistogram()
                    .Name("bpfchain_workqueue_queue_duration_seconds")
                    .Help("How long in seconds an item stays in the work queue before being "
                          "requested.")
                    .Register(*owner_)
                    .Add({{"name", name}}, queueBuckets())),
        worked_(prometheus::BuildHistogram()
                    .Name("bpfchain_workqueue_work_duration_seconds")
                    .Help("How long in seconds processing an item from the work queue takes.")
                    .Register(*owner_)
                    .Add({{"name", name}}, queueBuckets())),
        retries_(prometheus::BuildCounter()
                     .Name("bpfchain_workqueue_retries_total")
                     .Help("Total number of retries (delayed adds) handled by the work queue.")
                     .Register(*owner_)
                     .Add({{"name", name}})) {}

  void added() override {
    adds_.Increment();
    depth_.Increment();
  }
  void taken(double queuedSeconds) override {
    depth_.Decrement();
    queued_.Observe(queuedSeconds);
  }
  void finished(double workSeconds) override { worked_.Observe(workSeconds); }
  void retried() override { retries_.Increment(); }
  void setInFlightProbe(std::function<InFlight()> probe) override {
    std::lock_guard lock(mu_);
    probe_ = std::move(probe);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    InFlight inFlight;
    {
      // Held while probing, so a queue clearing its probe waits for a scrape in progress.
      std::lock_guard lock(mu_);
      if (probe_)
        inFlight = probe_();
    }
    auto family = [&](const char* metric, const char* help, double value) {
      prometheus::MetricFamily f{metric, help, prometheus::MetricType::Gauge, {}};
      prometheus::ClientMetric m;
      m.label = {{"name", name_}};
      m.gauge.value = value;
      f.metric.push_back(m);
      return f;
    };
    return {family("bpfchain_workqueue_unfinished_work_seconds",
                   "How many seconds of work in progress have not been observed by "
                   "work_duration; large values indicate stuck workers.",
                   inFlight.unfinishedSeconds),
            family("bpfchain_workqueue_longest_running_processor_seconds",
                   "How many seconds the longest running processor of the work queue has been "
                   "running.",
                   inFlight.longestRunningSeconds)};
  }

private:
  std::shared_ptr<prometheus::Registry> owner_; // holds the families below
  std::string name_;
  prometheus::Gauge& depth_;
  prometheus::Counter& adds_;
  prometheus::Histogram& queued_;
  prometheus::Histogram& worked_;
  prometheus::Counter& retries_;
  mutable std::mutex mu_;
  std::function<InFlight()> probe_;
};

class PrometheusRequestMetrics final : public RequestMetrics {
public:
  explicit PrometheusRequestMetrics(std::shared_ptr<prometheus::Registry> owner)
      : owner_(std::move(owner)),
        requests_(prometheus::BuildCounter()
                      .Name("bpfchain_rest_client_requests_total")
                      .Help("Number of HTTP requests to kube-apiserver, partitioned by status "
                            "code and method.")
                      .Register(*owner_)),
        duration_(prometheus::BuildHistogram()
                      .Name("bpfchain_rest_client_request_duration_seconds")
                      .Help("Request latency in seconds to kube-apiserver, by verb.")
                      .Register(*owner_)) {
    for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"})
      duration_.Add({{"verb", method}}, requestBuckets());
  }

  void observe(const std::string& method, int code, double seconds) override {
    requests_.Add({{"code", code == 0 ? "<error>" : std::to_string(code)}, {"method", method}})
        .Increment();
    duration_.Add({{"verb", method}}, requestBuckets()).Observe(seconds);
  }

private:
  std::shared_ptr<prometheus::Registry> owner_; // holds the families below
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
};

} // namespace

QueueMetricsHandle makeWorkQueueMetrics(std::shared_ptr<prometheus::Registry> registry,
                                        const std::string& name) {
  auto metrics = std::make_shared<PrometheusQueueMetrics>(std::move(registry), name);
  return {metrics, metrics};
}

std::shared_ptr<RequestMetrics> makeRequestMetrics(std::shared_ptr<prometheus::Registry> registry) {
  return std::make_shared<PrometheusRequestMetrics>(std::move(registry));
}

} // namespace bpfchain::k8s
