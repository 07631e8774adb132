#include "k8s/leader_election.h"

#include <condition_variable>
#include <ctime>
#include <optional>
#include <random>
#include <thread>

#include "system/time.h"

namespace bpfchain::k8s {

using Clock = std::chrono::steady_clock;

// client-go's LeaderElectionRecord, as the Lease spec holds it. Times stay strings: they are
// copied forward (acquireTime) or compared, never interpreted.
struct LeaseRecord {
  std::string holderIdentity;
  int64_t leaseDurationSeconds = 0;
  std::string acquireTime;
  std::string renewTime;
  int64_t leaseTransitions = 0;

  bool operator==(const LeaseRecord&) const = default;
};

namespace detail {

struct LeaseObservation {
  Json lease; // the Lease last read or written: the next PUT carries its resourceVersion
  bool seen = false;
  LeaseRecord record;             // the record as last seen changed
  Clock::time_point observedTime; // when, on our clock, it was seen to change
};

// Requests running on threads of their own; the elector waits for them before it goes.
struct InFlightRequests {
  std::mutex mutex;
  std::condition_variable done;
  int count = 0;
};

} // namespace detail

namespace {

using Observation = detail::LeaseObservation;

// client-go bounds an acquire attempt by nothing but the stop; the client's own request timeout
// (30 s) ends a hung request long before this.
constexpr auto kAcquireAttemptLimit = std::chrono::minutes(10);

struct Attempt {
  bool ok = false;
  Observation observation;
  std::string error;
};

// Runs `work` on a thread of its own and waits for its result until `deadline`; once `stop` is
// requested, for at most `grace` more. A Client request cannot be cancelled and may hang for the
// client's whole timeout, far past a RenewDeadline: the waiter gives up on time (as client-go's
// context does) and the thread runs on, counted in `inFlight` so that the elector outlives it.
template <typename T>
std::optional<T> runBounded(const std::shared_ptr<detail::InFlightRequests>& inFlight,
                            std::function<T()> work, Clock::time_point deadline,
                            const std::stop_token& stop = {}, Clock::duration grace = {}) {
  struct Slot {
    std::mutex mutex;
    std::condition_variable_any ready;
    std::optional<T> value;
  };
  auto slot = std::make_shared<Slot>();
  {
    std::lock_guard lock(inFlight->mutex);
    ++inFlight->count;
  }
  std::thread([slot, inFlight, work = std::move(work)] {
    T value = work();
    {
      std::lock_guard lock(slot->mutex);
      slot->value = std::move(value);
      slot->ready.notify_all();
    }
    std::lock_guard lock(inFlight->mutex);
    --inFlight->count;
    inFlight->done.notify_all();
  }).detach();
  std::unique_lock lock(slot->mutex);
  auto arrived = [&] { return slot->value.has_value(); };
  if (!slot->ready.wait_until(lock, stop, deadline, arrived) && stop.stop_requested())
    slot->ready.wait_until(lock, std::min(deadline, Clock::now() + grace), arrived);
  return std::move(slot->value);
}

// Sleeps until `until`; false when `stop` was requested first.
bool sleepUntil(Clock::time_point until, const std::stop_token& stop) {
  std::mutex mutex;
  std::condition_variable_any never;
  std::unique_lock lock(mutex);
  never.wait_until(lock, stop, until, [] { return false; });
  return !stop.stop_requested();
}

// wait.Jitter(RetryPeriod, JitterFactor): RetryPeriod + U[0, 1) * JitterFactor * RetryPeriod.
Clock::duration jittered(std::chrono::milliseconds period) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  double factor =
      1.0 + std::uniform_real_distribution<double>(0.0, 1.0)(random) * kLeaderElectionJitterFactor;
  return std::chrono::duration_cast<Clock::duration>(period * factor);
}

int64_t integerAt(const Json& spec, const char* field) {
  return spec.has_field(field) && spec.at(field).is_number() ? spec.at(field).as_number().to_int64()
                                                             : 0;
}

LeaseRecord recordOf(const Json& lease) {
  LeaseRecord record;
  if (!lease.is_object() || !lease.has_field("spec") || !lease.at("spec").is_object())
    return record;
  const Json& spec = lease.at("spec");
  record.holderIdentity = stringAt(spec, {"holderIdentity"});
  record.leaseDurationSeconds = integerAt(spec, "leaseDurationSeconds");
  record.acquireTime = stringAt(spec, {"acquireTime"});
  record.renewTime = stringAt(spec, {"renewTime"});
  record.leaseTransitions = integerAt(spec, "leaseTransitions");
  return record;
}

// client-go's LeaderElectionRecordToLeaseSpec. A PUT replaces the whole spec.
Json specOf(const LeaseRecord& record) {
  Json spec = Json::object();
  spec["holderIdentity"] = Json::string(record.holderIdentity);
  spec["leaseDurationSeconds"] = Json::number(record.leaseDurationSeconds);
  if (!record.acquireTime.empty())
    spec["acquireTime"] = Json::string(record.acquireTime);
  if (!record.renewTime.empty())
    spec["renewTime"] = Json::string(record.renewTime);
  spec["leaseTransitions"] = Json::number(record.leaseTransitions);
  return spec;
}

Json withSpec(Json lease, const LeaseRecord& record) {
  lease["spec"] = specOf(record);
  return lease;
}

Json newLease(const LeaderElectionConfig& config, const LeaseRecord& record) {
  Json lease = Json::object();
  lease["apiVersion"] = Json::string(resources::kLeases.apiVersion());
  lease["kind"] = Json::string(resources::kLeases.kind);
  lease["metadata"]["name"] = Json::string(config.leaseName);
  lease["metadata"]["namespace"] = Json::string(config.leaseNamespace);
  lease["spec"] = specOf(record);
  return lease;
}

void observe(Observation& observation, const LeaseRecord& record) {
  observation.seen = true;
  observation.record = record;
  observation.observedTime = Clock::now();
}

// client-go's tryAcquireOrRenew, on a copy of the observation: the caller keeps the result only
// when it arrives in time.
Attempt tryAcquireOrRenew(Client& client, const LeaderElectionConfig& config, Observation seen) {
  Attempt attempt{false, std::move(seen), ""};
  Observation& obs = attempt.observation;
  const Clock::time_point now = Clock::now();
  const std::string wallNow = formatMicroTime(std::chrono::system_clock::now());
  LeaseRecord mine{config.identity,
                   std::chrono::duration_cast<std::chrono::seconds>(config.leaseDuration).count(),
                   wallNow, wallNow, 0};
  auto isLeader = [&] { return obs.seen && obs.record.holderIdentity == config.identity; };
  auto leaseValid = [&] {
    return obs.observedTime + std::chrono::seconds(obs.record.leaseDurationSeconds) > now;
  };
  auto failed = [&](const std::string& what, const ApiError& error) {
    attempt.error =
        what + " lease " + config.leaseNamespace + "/" + config.leaseName + ": " + error.describe();
    return std::move(attempt);
  };

  // 1. Fast path: the leader whose lease is still valid assumes the Lease is as it last wrote
  // it; a conflict sends it down the slow path.
  if (isLeader() && leaseValid() && obs.lease.is_object()) {
    mine.acquireTime = obs.record.acquireTime;
    mine.leaseTransitions = obs.record.leaseTransitions;
    auto updated = client.update(resources::kLeases, withSpec(obs.lease, mine));
    if (updated) {
      obs.lease = std::move(*updated);
      observe(obs, mine);
      attempt.ok = true;
      return attempt;
    }
  }

  // 2. Read the record, or create it.
  auto got = client.get(resources::kLeases, config.leaseNamespace, config.leaseName);
  if (!got) {
    if (!got.error().notFound())
      return failed("get", got.error());
    auto created = client.create(resources::kLeases, newLease(config, mine));
    if (!created)
      return failed("create", created.error());
    obs.lease = std::move(*created);
    observe(obs, mine);
    attempt.ok = true;
    return attempt;
  }

  // 3. A changed record restarts the holder's lease on our clock.
  LeaseRecord current = recordOf(*got);
  obs.lease = std::move(*got);
  if (!obs.seen || current != obs.record)
    observe(obs, current);
  if (!current.holderIdentity.empty() && leaseValid() && !isLeader()) {
    attempt.error = "lease " + config.leaseNamespace + "/" + config.leaseName + " is held by " +
                    current.holderIdentity + " and has not expired";
    return attempt;
  }

  // 4. Take it (or keep it): a takeover counts a transition.
  if (isLeader()) {
    mine.acquireTime = current.acquireTime;
    mine.leaseTransitions = current.leaseTransitions;
  } else {
    mine.leaseTransitions = current.leaseTransitions + 1;
  }
  auto updated = client.update(resources::kLeases, withSpec(obs.lease, mine));
  if (!updated)
    return failed("update", updated.error());
  obs.lease = std::move(*updated);
  observe(obs, mine);
  attempt.ok = true;
  return attempt;
}

// client-go's release, but judged on a fresh read: the record is cleared only while the server
// still names us, so a candidate that lost the Lease never clears its successor's.
Attempt releaseLease(Client& client, const LeaderElectionConfig& config, Observation seen) {
  Attempt attempt{false, std::move(seen), ""};
  for (int i = 0; i < 5; ++i) {
    auto got = client.get(resources::kLeases, config.leaseNamespace, config.leaseName);
    if (!got) {
      attempt.ok = got.error().notFound();
      attempt.error = attempt.ok ? "" : "release: " + got.error().describe();
      return attempt;
    }
    LeaseRecord current = recordOf(*got);
    if (current.holderIdentity != config.identity) {
      attempt.ok = true;
      return attempt;
    }
    const std::string now = formatMicroTime(std::chrono::system_clock::now());
    LeaseRecord released{"", 1, now, now, current.leaseTransitions};
    auto updated = client.update(resources::kLeases, withSpec(*got, released));
    if (updated) {
      attempt.observation.lease = std::move(*updated);
      observe(attempt.observation, released);
      attempt.ok = true;
      return attempt;
    }
    attempt.error = "release: " + updated.error().describe();
    if (!updated.error().conflict())
      return attempt;
  }
  return attempt;
}

} // namespace

std::string formatMicroTime(std::chrono::system_clock::time_point time) {
  return rfc3339(time, 6);
}

Result<std::unique_ptr<LeaderElector>>
LeaderElector::create(Client& client, LeaderElectionConfig config, LeaderCallbacks callbacks) {
  if (config.leaseNamespace.empty() || config.leaseName.empty())
    return invalidError("leader election: the lease needs a namespace and a name");
  if (config.identity.empty())
    return invalidError("leader election: the identity is empty");
  if (config.leaseDuration < std::chrono::seconds(1))
    return invalidError("leader election: leaseDuration must be at least 1s");
  if (config.retryPeriod <= std::chrono::milliseconds(0))
    return invalidError("leader election: retryPeriod must be greater than zero");
  if (config.leaseDuration <= config.renewDeadline)
    return invalidError("leader election: leaseDuration must be greater than renewDeadline");
  if (config.renewDeadline.count() <=
      static_cast<int64_t>(kLeaderElectionJitterFactor *
                           static_cast<double>(config.retryPeriod.count())))
    return invalidError(
        "leader election: renewDeadline must be greater than retryPeriod*JitterFactor");
  if (!callbacks.onStartedLeading || !callbacks.onStoppedLeading)
    return invalidError("leader election: onStartedLeading and onStoppedLeading are required");
  return std::unique_ptr<LeaderElector>(
      new LeaderElector(client, std::move(config), std::move(callbacks)));
}

LeaderElector::LeaderElector(Client& client, LeaderElectionConfig config, LeaderCallbacks callbacks)
    : client_(client), config_(std::move(config)), callbacks_(std::move(callbacks)),
      inFlight_(std::make_shared<detail::InFlightRequests>()),
      observation_(std::make_unique<Observation>()) {}

LeaderElector::~LeaderElector() {
  std::unique_lock lock(inFlight_->mutex);
  inFlight_->done.wait(lock, [&] { return inFlight_->count == 0; });
}

void LeaderElector::stop() {
  stop_.request_stop();
}

bool LeaderElector::holdsLease() const {
  std::lock_guard lock(mutex_);
  return observation_->seen && observation_->record.holderIdentity == config_.identity;
}

bool LeaderElector::isLeader() const {
  return leading_ && holdsLease();
}

std::string LeaderElector::leader() const {
  std::lock_guard lock(mutex_);
  return observation_->seen ? observation_->record.holderIdentity : "";
}

std::string LeaderElector::lastError() const {
  std::lock_guard lock(mutex_);
  return lastError_;
}

ElectionEnd LeaderElector::run(const std::stop_token& stop) {
  std::stop_callback forward(stop, [this] { stop_.request_stop(); });
  const std::stop_token stopping = stop_.get_token();
  if (!acquire(stopping)) {
    // The attempt in flight when the stop came may have taken the Lease.
    if (config_.releaseOnCancel && holdsLease())
      release();
    return ElectionEnd::Stopped;
  }

  std::stop_source leading;
  leading_ = true;
  callbacks_.onStartedLeading(leading.get_token());
  const bool lost = !renew(stopping);
  leading_ = false;
  leading.request_stop();
  // Before the release: the next leader must not start while this one still works.
  callbacks_.onStoppedLeading();
  if (config_.releaseOnCancel)
    release();
  return lost ? ElectionEnd::LostLeadership : ElectionEnd::Stopped;
}

namespace {

// Keeps what an attempt that answered in time saw; false when it did not succeed.
bool keep(std::mutex& mutex, Observation& observation, std::string& lastError,
          std::optional<Attempt>& attempt, const std::string& noAnswer) {
  std::lock_guard lock(mutex);
  if (!attempt) {
    lastError = noAnswer;
    return false;
  }
  observation = std::move(attempt->observation);
  lastError = attempt->error;
  return attempt->ok;
}

} // namespace

// client-go's acquire: an attempt, then RetryPeriod with jitter, until one succeeds. A stop
// waits up to RenewDeadline for the attempt in flight, so that run() knows whether it took the
// Lease and can hand it back.
bool LeaderElector::acquire(const std::stop_token& stop) {
  const std::string noAnswer = "acquire lease " + config_.leaseNamespace + "/" + config_.leaseName +
                               ": no answer from the API server";
  while (!stop.stop_requested()) {
    std::function<Attempt()> work = [client = &client_, config = config_, seen = *observation_] {
      return tryAcquireOrRenew(*client, config, seen);
    };
    std::optional<Attempt> attempt =
        runBounded(inFlight_, std::move(work), Clock::now() + kAcquireAttemptLimit, stop,
                   config_.renewDeadline);
    const bool acquired = keep(mutex_, *observation_, lastError_, attempt, noAnswer);
    if (stop.stop_requested())
      return false;
    reportTransition();
    if (acquired)
      return true;
    if (!sleepUntil(Clock::now() + jittered(config_.retryPeriod), stop))
      return false;
  }
  return false;
}

// client-go's renew: each round retries every RetryPeriod until it renews or RenewDeadline
// passes, every attempt bounded by that deadline too; rounds start RetryPeriod apart. True when
// stopped, false when leadership is lost.
bool LeaderElector::renew(const std::stop_token& stop) {
  const std::string noAnswer = "renew lease " + config_.leaseNamespace + "/" + config_.leaseName +
                               ": no answer before the renew deadline";
  for (;;) {
    const Clock::time_point deadline = Clock::now() + config_.renewDeadline;
    bool renewed = false;
    for (;;) {
      const Clock::time_point next = Clock::now() + config_.retryPeriod;
      std::function<Attempt()> work = [client = &client_, config = config_, seen = *observation_] {
        return tryAcquireOrRenew(*client, config, seen);
      };
      // Not cut short by a stop: the deadline bounds it, and the release needs its outcome.
      std::optional<Attempt> attempt = runBounded(inFlight_, std::move(work), deadline);
      renewed = keep(mutex_, *observation_, lastError_, attempt, noAnswer);
      if (renewed)
        break;
      if (!sleepUntil(std::min(next, deadline), stop))
        return true;
      if (Clock::now() >= deadline)
        break;
    }
    reportTransition();
    if (!renewed)
      return false;
    if (!sleepUntil(Clock::now() + config_.retryPeriod, stop))
      return true;
  }
}

// Bounded by RenewDeadline, as in client-go, and not by the stop that led here.
void LeaderElector::release() {
  std::function<Attempt()> work = [client = &client_, config = config_, seen = *observation_] {
    return releaseLease(*client, config, seen);
  };
  std::optional<Attempt> attempt =
      runBounded(inFlight_, std::move(work), Clock::now() + config_.renewDeadline);
  (void)keep(mutex_, *observation_, lastError_, attempt,
             "release lease " + config_.leaseNamespace + "/" + config_.leaseName +
                 ": no answer before the renew deadline");
}

// client-go's maybeReportTransition.
void LeaderElector::reportTransition() {
  std::string holder;
  {
    std::lock_guard lock(mutex_);
    if (!observation_->seen)
      return;
    holder = observation_->record.holderIdentity;
  }
  if (reported_ && holder == reportedLeader_)
    return;
  reported_ = true;
  reportedLeader_ = holder;
  if (callbacks_.onNewLeader)
    callbacks_.onNewLeader(holder);
}

} // namespace bpfchain::k8s
