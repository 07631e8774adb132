// Leader election on a coordination.k8s.io/v1 Lease with client-go's algorithm and defaults
// (tools/leaderelection, DESIGN.md section 6). A candidate GETs the Lease, CREATEs it when it is
// absent, and takes it over with a PUT that carries the resourceVersion it read, so of two racing
// candidates one wins and the other gets a 409. A holder's lease counts as expired once its
// record has not changed for leaseDurationSeconds, measured on THIS process's clock from when it
// saw the change, never from the server's renewTime: clocks of different nodes may disagree, only
// their rates must not. The leader renews every RetryPeriod and steps down when it has not
// renewed for RenewDeadline, which is shorter than LeaseDuration so that it stops before another
// candidate may take over. On a clean stop it releases the Lease (empty holder,
// leaseDurationSeconds 1) so that another candidate takes over at its next attempt.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "k8s/client.h"

namespace bpfchain::k8s {

// client-go's JitterFactor: acquire attempts are RetryPeriod * (1 + U[0, 1.2)) apart, so that
// candidates started together do not stay in step.
inline constexpr double kLeaderElectionJitterFactor = 1.2;

struct LeaderElectionConfig {
  std::string leaseNamespace;
  std::string leaseName;
  std::string identity; // unique per candidate, e.g. the pod name
  // client-go's defaults. Must satisfy LeaseDuration > RenewDeadline > 1.2 * RetryPeriod, and
  // LeaseDuration >= 1 s: the Lease holds whole seconds (truncated, as client-go does). A leader
  // steps down at the latest RetryPeriod + RenewDeadline after its last renewal, so only
  // LeaseDuration > RenewDeadline + RetryPeriod rules out two leaders (client-go does not check
  // that either; its defaults and 3 s / 2 s / 0.5 s have the margin).
  std::chrono::milliseconds leaseDuration = std::chrono::seconds(15);
  std::chrono::milliseconds renewDeadline = std::chrono::seconds(10);
  std::chrono::milliseconds retryPeriod = std::chrono::seconds(2);
  // client-go's ReleaseOnCancel: when leadership ends, hand the Lease back if we still hold it.
  bool releaseOnCancel = true;
};

// Called on run()'s thread, so each must return promptly: start the work elsewhere.
struct LeaderCallbacks {
  // Required. `leading` is requested when leadership ends, just before onStoppedLeading.
  std::function<void(std::stop_token leading)> onStartedLeading;
  // Required. Called once after onStartedLeading, and before the Lease is released: work must
  // have stopped when it returns, or the next leader may overlap with it. Unlike client-go, it
  // is not called when this candidate never led.
  std::function<void()> onStoppedLeading;
  // Optional. Each change of the observed holder, including to us; "" means released.
  std::function<void(const std::string& identity)> onNewLeader;
};

enum class ElectionEnd { Stopped, LostLeadership };

namespace detail {
struct LeaseObservation;
struct InFlightRequests;
} // namespace detail

class LeaderElector {
public:
  // Rejects what client-go's NewLeaderElector rejects. `client` must outlive the elector.
  static Result<std::unique_ptr<LeaderElector>> create(Client& client, LeaderElectionConfig config,
                                                       LeaderCallbacks callbacks);
  // Waits for requests still in flight. A Client request cannot be cancelled, so one that the
  // elector stopped waiting for (at RenewDeadline) runs on to its end; only an API server that
  // hangs makes that long (up to the client's request timeout, 30 s).
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Campaigns, then leads, until `stop` or stop() is requested (Stopped) or a renewal fails for
  // RenewDeadline (LostLeadership). One run() at a time; after a stop, run() returns at once.
  // With releaseOnCancel, a Lease still held when run() ends is released, including one taken
  // by an attempt that was in flight when the stop came.
  ElectionEnd run(const std::stop_token& stop = {});
  // Thread-safe. run() returns once the request in flight and the release are done: at once
  // with a healthy API server, within 2 x RenewDeadline when it hangs.
  void stop();

  // Between onStartedLeading and onStoppedLeading, and only while the last observed record names
  // us (it turns false as soon as a renewal sees another holder). Thread-safe.
  bool isLeader() const;
  // The holder in the last observed record ("" when none or released). Thread-safe.
  std::string leader() const;
  // The last failed attempt's error, for logs ("" when none). Thread-safe.
  std::string lastError() const;
  const LeaderElectionConfig& config() const { return config_; }

private:
  LeaderElector(Client& client, LeaderElectionConfig config, LeaderCallbacks callbacks);
  bool acquire(const std::stop_token& stop);
  bool renew(const std::stop_token& stop);
  void release();
  void reportTransition();
  bool holdsLease() const;

  Client& client_;
  const LeaderElectionConfig config_;
  const LeaderCallbacks callbacks_;
  std::stop_source stop_;
  std::atomic<bool> leading_{false};
  std::shared_ptr<detail::InFlightRequests> inFlight_;
  mutable std::mutex mutex_;                              // guards observation_ and lastError_
  std::unique_ptr<detail::LeaseObservation> observation_; // only run()'s thread writes it
  std::string lastError_;
  std::string reportedLeader_; // only run()'s thread
  bool reported_ = false;
};

// A MicroTime as the API server writes it (RFC 3339, microseconds, UTC):
// 2006-01-02T15:04:05.000000Z.
std::string formatMicroTime(std::chrono::system_clock::time_point time);

} // namespace bpfchain::k8s
