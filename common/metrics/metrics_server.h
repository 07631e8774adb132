// The HTTP endpoint every bpfchain binary serves (DESIGN.md section 7), on civetweb:
//   GET /metrics  Prometheus text format 0.0.4 from every registered prometheus::Collectable
//                 (a prometheus::Registry, or a class of one's own whose Collect() builds the
//                 MetricFamily list at scrape time, e.g. from kernel counters), in registration
//                 order; a collectable that has gone (its weak_ptr expired) is dropped.
//   GET /healthz  200 "ok" while the process's main loop is alive: the server lives as long as
//                 the binary's main loop owns it, and each liveness check passes; else 503 with
//                 one line per failing check, "<name>: <why>" (controller-runtime's healthz).
//   GET /readyz   200 "ok" when every readiness check passes, else 503 with one line per
//                 failing check, "<name>: <why>" (controller-runtime's readyz).
//   anything else 404; a method other than GET or HEAD on those paths 405.
// prometheus-cpp's Exposer is not used: it serves /metrics only. No civetweb header here.
// Checks and collectables run on the server's threads, possibly concurrently, and must be
// thread-safe; add(), addReadinessCheck() and addLivenessCheck() may be called at any time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "system/result.h"

namespace prometheus {
class Collectable;
} // namespace prometheus

namespace bpfchain::metrics {

// nullopt = ready (or alive), else why not.
using ReadinessCheck = std::function<std::optional<std::string>()>;

class MetricsServer {
public:
  // `address` is "HOST:PORT": ":9450" listens on every IPv4 interface, "127.0.0.1:0" on a free
  // port of the loopback. IPv4 only: Debian's civetweb is built without IPv6 ("[::1]:9450" is
  // refused with a message that says so). Fails with an Error that names the address: a
  // malformed one, or one that cannot be bound (with the reason, e.g. address in use).
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& address);
  // Stops serving; returns once no request is in progress.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound port (the one the kernel chose for port 0).
  uint16_t port() const;
  // Serves `collectable`'s metrics after those added before it, while it lives.
  void add(std::weak_ptr<prometheus::Collectable> collectable);
  // /readyz answers 503 while `check` says why not; names should be unique.
  void addReadinessCheck(std::string name, ReadinessCheck check);
  // /healthz answers 503 while `check` says why not (e.g. a main loop that stopped ticking).
  void addLivenessCheck(std::string name, ReadinessCheck check);

  struct Impl; // public only for the C callbacks in the .cpp

private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpfchain::metrics
