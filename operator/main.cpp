// bpfchain-operator [--kubeconfig FILE] [--leader-elect] [--lease-namespace NS]
//                   [--metrics-address HOST:PORT] [--revision-namespace NS]
//                   [--cleanup-deadline SECONDS] [--write-concurrency N]
//                   [--progress-deadline SECONDS] [--agent-stale-seconds SECONDS]
// Rolls BpfChains out to per-node BpfNodeConfigs (controller.h). With --leader-elect, only the
// replica holding the Lease bpfchain-operator in --lease-namespace acts.
//
// --log-level and --log-format: the one logger's (system/log.h), as in every binary.
// --write-concurrency (default 8): workers, so node writes in flight at once.
// --progress-deadline (default 600): nodes applying a generation with none finishing for this
// long are named in the chain's Progressing condition (ProgressDeadlineExceeded) and an Event.
// --agent-stale-seconds (default 180, three of the agents' default --heartbeat-seconds 60: one
// lost write and a late resync pass do not flap a node): a node whose agent's heartbeat is older
// is not counted Ready (status.nodes.stale, Degraded AgentNotReporting, an Event per change).
// --metrics-address (default :9451; IPv4) serves /metrics (metrics.h), /healthz (200 while the
// main loop runs) and /readyz: 200 once the informer caches have synced; with --leader-elect a
// replica that does not lead is ready too (readiness says it can serve, i.e. take over, not
// that it leads: a Service or a rollout of the Deployment must not wait for the election).
//
// SIGTERM or SIGINT: the worker finishes the reconcile in hand (a chain's node writes stop
// between two nodes), the informers stop, a held Lease is released (so a standby leads at its
// next attempt, not a lease duration later), the metrics server stops, exit 0. Exit 1 when
// the caches do not sync or the Lease is lost (another replica may act: stop at once, as
// controller-runtime does); a second signal exits at once.
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <optional>
#include <signal.h>
#include <string_view>
#include <thread>
#include <unistd.h>

#include "k8s/leader_election.h"
#include "metrics/metrics_server.h"
#include "metrics/process_collector.h"
#include "operator/controller.h"
#include "operator/metrics.h"
#include "system/command_line.h"
#include "system/log.h"
#include "system/version.h"

using namespace bpfchain;

namespace {

// Set by SIGTERM/SIGINT; a lock-free atomic store is async-signal-safe, so threads poll it.
std::atomic<bool> stopRequested{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void onSignal(int) {
  if (stopRequested)
    ::_exit(1); // a second signal: the operator is stuck, or the user is impatient
  stopRequested = true;
}

struct Flags {
  std::string kubeconfig;
  bool leaderElect = false;
  std::string leaseNamespace = "bpfchain-system";
  std::string revisionNamespace = "bpfchain-system";
  std::string metricsAddress = ":9451";
  int cleanupDeadline = 300;
  int writeConcurrency = 8;
  int progressDeadline = 600;
  int agentStale = 180;
};

constexpr const char* kSynopsis =
    "Rolls BpfChains out to per-node BpfNodeConfigs. With --leader-elect, only the replica\n"
    "holding the Lease bpfchain-operator in --lease-namespace acts.\n";

// The command line (DESIGN.md section 10): nullopt to run, else the exit status.
std::optional<int> parseFlags(int argc, char** argv, Flags& f) {
  cli::CommandLine cl("bpfchain-operator", kSynopsis);
  CLI::App& app = cl.app();
  app.add_option("--kubeconfig", f.kubeconfig,
                 "the API server to use (default: $KUBECONFIG, else in-cluster)")
      ->type_name("FILE");
  app.add_flag("--leader-elect", f.leaderElect, "act only while holding the Lease");
  app.add_option("--lease-namespace", f.leaseNamespace, "the Lease's namespace")
      ->type_name("NS")
      ->capture_default_str();
  app.add_option("--revision-namespace", f.revisionNamespace, "where chain revisions are kept")
      ->type_name("NS")
      ->capture_default_str();
  app.add_option("--metrics-address", f.metricsAddress, "/metrics, /healthz and /readyz")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--cleanup-deadline", f.cleanupDeadline,
                 "seconds a deleted chain waits for the agents")
      ->type_name("SECONDS")
      ->check(cli::integerIn(0, 1000000))
      ->capture_default_str();
  app.add_option("--write-concurrency", f.writeConcurrency,
                 "workers: node writes in flight at once")
      ->type_name("N")
      ->check(cli::integerIn(1, 1000000))
      ->capture_default_str();
  app.add_option("--progress-deadline", f.progressDeadline,
                 "seconds with no node finishing before the nodes are named")
      ->type_name("SECONDS")
      ->check(cli::integerIn(1, 1000000))
      ->capture_default_str();
  app.add_option("--agent-stale-seconds", f.agentStale,
                 "a node whose agent's heartbeat is older is not Ready")
      ->type_name("SECONDS")
      ->check(cli::integerIn(1, 1000000))
      ->capture_default_str();
  cl.logFlags();
  return cl.parse(argc, argv);
}

std::string hostname() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

std::string identity() {
  return hostname() + "_" + std::to_string(::getpid());
}

void installSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

// The controller of the moment, for /readyz, which may ask while it starts or stops.
class ControllerSlot {
public:
  void set(op::Controller* controller) {
    std::lock_guard lock(mu_);
    controller_ = controller;
  }
  std::optional<std::string> readiness() {
    std::lock_guard lock(mu_);
    if (!controller_)
      return "the controller is not running";
    return controller_->readiness();
  }

private:
  std::mutex mu_;
  op::Controller* controller_ = nullptr;
};

// The process around the controller: metrics server, health checks, the main loop, and
// (with --leader-elect) the election that starts and stops the controller.
class OperatorProcess {
public:
  OperatorProcess(const Flags& flags, k8s::Client& client)
      : flags_(flags), client_(client), metrics_(BPFCHAIN_VERSION), leading_(!flags.leaderElect),
        lastTick_(std::chrono::steady_clock::now().time_since_epoch().count()) {
    metrics_.setLeader(!flags.leaderElect);
  }

  // The exit status.
  int run() {
    auto server = serve();
    if (!server)
      return 1;
    bool ok = flags_.leaderElect ? runElected() : runAlone();
    server.reset();
    if (!ok || failed_)
      log::error("exiting on failure");
    else
      log::info("stopped");
    return ok && !failed_ ? 0 : 1;
  }

private:
  // /metrics, /readyz (the informers, while leading), /healthz (the main loop); nullptr when
  // the address cannot be served.
  std::unique_ptr<metrics::MetricsServer> serve() {
    auto server = metrics::MetricsServer::start(flags_.metricsAddress);
    if (!server) {
      log::error("cannot serve metrics", {{"error", server.error().message()}});
      return nullptr;
    }
    log::info("serving metrics",
              {{"address", flags_.metricsAddress.substr(0, flags_.metricsAddress.rfind(':')) + ":" +
                               std::to_string((*server)->port())}});
    (*server)->add(metrics_.registry());
    (*server)->add(metrics_.workQueueInFlight());
    (*server)->add(metrics::processCollector());
    k8s::setRequestMetrics(metrics_.requests());
    (*server)->addReadinessCheck("informers", [this]() -> std::optional<std::string> {
      if (!leading_)
        return std::nullopt; // a standby can serve: it takes over when the leader goes
      return slot_.readiness();
    });
    (*server)->addLivenessCheck("main-loop", [this]() -> std::optional<std::string> {
      auto since = std::chrono::steady_clock::now() -
                   std::chrono::steady_clock::time_point(
                       std::chrono::steady_clock::duration(lastTick_.load()));
      if (since < std::chrono::seconds(30))
        return std::nullopt;
      return "the main loop has not run for " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(since).count()) + " s";
    });
    return std::move(*server);
  }

  op::ControllerOptions controllerOptions() {
    return {.revisionNamespace = flags_.revisionNamespace,
            .cleanupDeadline = std::chrono::seconds(flags_.cleanupDeadline),
            .metrics = &metrics_,
            .eventHost = hostname(),
            .writeConcurrency = flags_.writeConcurrency,
            .progressDeadline = std::chrono::seconds(flags_.progressDeadline),
            .agentStale = std::chrono::seconds(flags_.agentStale)};
  }

  // Runs the controller until `stop`; sets failed_ when it could not start.
  void runController(const std::stop_token& stop) {
    op::Controller controller(client_, controllerOptions());
    slot_.set(&controller);
    auto started = controller.start(std::chrono::seconds(120), stop);
    if (!started && !stop.stop_requested()) {
      log::error("the controller did not start", {{"error", started.error().message()}});
      slot_.set(nullptr);
      failed_ = true;
      return;
    }
    if (started) {
      log::info("controller running");
      std::mutex mu;
      std::condition_variable_any stopped;
      std::unique_lock lock(mu);
      stopped.wait(lock, stop, [] { return false; });
    }
    slot_.set(nullptr);
    controller.stop();
    log::info("controller stopped");
  }

  // Until a signal, or until `ended` says the work ended by itself.
  void mainLoop(const std::function<bool()>& ended) {
    while (!stopRequested && !failed_ && !ended()) {
      lastTick_ = std::chrono::steady_clock::now().time_since_epoch().count();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  bool runAlone() {
    std::stop_source stop;
    std::thread work([&] { runController(stop.get_token()); });
    mainLoop([] { return false; });
    stop.request_stop();
    work.join();
    return true;
  }

  // False when the election cannot run or the Lease was lost.
  bool runElected() {
    std::thread work;
    std::string lease = flags_.leaseNamespace + "/bpfchain-operator";
    auto elector = k8s::LeaderElector::create(
        client_,
        {.leaseNamespace = flags_.leaseNamespace,
         .leaseName = "bpfchain-operator",
         .identity = identity()},
        {.onStartedLeading =
             [&](const std::stop_token& leadership) {
               log::info("leading", {{"lease", lease}});
               leading_ = true;
               metrics_.setLeader(true);
               work = std::thread([this, leadership] { runController(leadership); });
             },
         .onStoppedLeading =
             [&] {
               if (work.joinable())
                 work.join();
               leading_ = false;
               metrics_.setLeader(false);
             },
         .onNewLeader =
             [](const std::string& who) {
               log::info("leader changed", {{"leader", who.empty() ? "nobody" : who}});
             }});
    if (!elector) {
      log::error("cannot run the leader election", {{"error", elector.error().message()}});
      return false;
    }
    std::atomic<bool> ended{false};
    k8s::ElectionEnd end = k8s::ElectionEnd::Stopped;
    std::thread election([&] {
      end = (*elector)->run();
      ended = true;
    });
    mainLoop([&] { return ended.load(); });
    (*elector)->stop(); // stops the controller, then releases the Lease
    election.join();
    if (work.joinable())
      work.join();
    if (end == k8s::ElectionEnd::LostLeadership) {
      log::error("lost the lease; exiting", {{"lease", lease}});
      return false;
    }
    return true;
  }

  const Flags& flags_;
  k8s::Client& client_;
  // Before the server's checks use them (the server is reset before run() returns).
  op::OperatorMetrics metrics_;
  ControllerSlot slot_;
  std::atomic<bool> leading_;
  std::atomic<std::chrono::steady_clock::rep> lastTick_;
  std::atomic<bool> failed_{false};
};

} // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (auto exit = parseFlags(argc, argv, flags))
    return *exit;
  log::info("starting bpfchain-operator",
            {{"version", BPFCHAIN_VERSION}, {"leaderElect", flags.leaderElect}});
  auto config = k8s::defaultConfig(flags.kubeconfig);
  if (!config) {
    log::error("cannot configure the API client", {{"error", config.error().message()}});
    return 1;
  }
  auto created = k8s::Client::create(*config);
  if (!created) {
    log::error("cannot create the API client", {{"error", created.error().message()}});
    return 1;
  }
  std::shared_ptr<k8s::Client> client(std::move(*created));
  installSignalHandlers();
  OperatorProcess process(flags, *client);
  return process.run();
}
