// bpfchain-operator [--kubeconfig FILE] [--leader-elect] [--lease-namespace NS]
//                   [--revision-namespace NS] [--cleanup-deadline SECONDS]
// Rolls BpfChains out to per-node BpfNodeConfigs (controller.h). With --leader-elect, only the
// replica holding the Lease bpfchain-operator in --lease-namespace acts.
#include <atomic>
#include <cstring>
#include <iostream>
#include <signal.h>
#include <thread>
#include <unistd.h>

#include "k8s/leader_election.h"
#include "operator/controller.h"

using namespace bpfchain;

namespace {

// Set by SIGTERM/SIGINT; a lock-free atomic store is async-signal-safe, so threads poll it.
std::atomic<bool> stopRequested{false};

void onSignal(int) {
  stopRequested = true;
}

void waitForSignal() {
  while (!stopRequested)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

struct Flags {
  std::string kubeconfig;
  bool leaderElect = false;
  std::string leaseNamespace = "bpfchain-system";
  std::string revisionNamespace = "bpfchain-system";
  int cleanupDeadline = 300;
};

Result<Flags> parseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc)
        return std::nullopt;
      return std::string(argv[++i]);
    };
    std::optional<std::string> v;
    if (arg == "--leader-elect") {
      f.leaderElect = true;
      continue;
    }
    if (arg != "--kubeconfig" && arg != "--lease-namespace" && arg != "--revision-namespace" &&
        arg != "--cleanup-deadline")
      return invalidError("unknown flag " + arg);
    if (!(v = value()))
      return invalidError(arg + " needs a value");
    if (arg == "--kubeconfig")
      f.kubeconfig = *v;
    else if (arg == "--lease-namespace")
      f.leaseNamespace = *v;
    else if (arg == "--revision-namespace")
      f.revisionNamespace = *v;
    else
      f.cleanupDeadline = std::stoi(*v);
  }
  return f;
}

std::string identity() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "_" + std::to_string(::getpid());
}

} // namespace

int main(int argc, char** argv) {
  auto flags = parseFlags(argc, argv);
  if (!flags) {
    std::cerr << "bpfchain-operator: " << flags.error().message() << "\n";
    return 2;
  }
  auto config = k8s::defaultConfig(flags->kubeconfig);
  if (!config) {
    std::cerr << "bpfchain-operator: " << config.error().message() << "\n";
    return 1;
  }
  auto created = k8s::Client::create(*config);
  if (!created) {
    std::cerr << "bpfchain-operator: " << created.error().message() << "\n";
    return 1;
  }
  std::shared_ptr<k8s::Client> client(std::move(*created));
  signal(SIGTERM, onSignal);
  signal(SIGINT, onSignal);

  op::ControllerOptions options{.revisionNamespace = flags->revisionNamespace,
                                .cleanupDeadline = std::chrono::seconds(flags->cleanupDeadline)};
  auto runController = [&](const std::stop_token& leading) {
    op::Controller controller(*client, options);
    if (auto r = controller.start(); !r) {
      std::cerr << "bpfchain-operator: " << r.error().message() << "\n";
      return false;
    }
    std::cerr << "bpfchain-operator: controller running\n";
    while (!stopRequested && !leading.stop_requested())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    controller.stop();
    return true;
  };

  if (!flags->leaderElect) {
    return runController(std::stop_token()) ? 0 : 1;
  }

  std::thread work;
  auto elector = k8s::LeaderElector::create(
      *client,
      {.leaseNamespace = flags->leaseNamespace,
       .leaseName = "bpfchain-operator",
       .identity = identity()},
      {.onStartedLeading =
           [&](const std::stop_token& leading) {
             std::cerr << "bpfchain-operator: leading\n";
             work = std::thread([&, leading] { runController(leading); });
           },
       .onStoppedLeading =
           [&] {
             if (work.joinable())
               work.join();
           },
       .onNewLeader =
           [](const std::string& who) {
             std::cerr << "bpfchain-operator: leader is " << (who.empty() ? "nobody" : who) << "\n";
           }});
  if (!elector) {
    std::cerr << "bpfchain-operator: " << elector.error().message() << "\n";
    return 1;
  }
  std::thread signals([&] {
    waitForSignal();
    (*elector)->stop();
  });
  k8s::ElectionEnd end = (*elector)->run();
  stopRequested = true;
  signals.join();
  if (work.joinable())
    work.join();
  // Losing the Lease means another replica may act: stop at once, as controller-runtime does.
  return end == k8s::ElectionEnd::LostLeadership ? 1 : 0;
}
