// bpfchain-test-leader-candidate: one leader-election candidate in a process of its own, for
// tests that make processes compete for a Lease (and SIGKILL the leader).
//   bpfchain-test-leader-candidate --kubeconfig F --identity X --lease NAME [--namespace NS]
//       [--lease-duration s --renew-deadline s --retry-period s]   (seconds, fractions allowed)
// Prints one line per event on stdout, flushed at once; times are CLOCK_MONOTONIC milliseconds,
// comparable with the parent's std::chrono::steady_clock:
//   ready <ms>      signals are handled from here on
//   leading <ms>    onStartedLeading
//   stopped <ms>    onStoppedLeading
//   leader <id>     onNewLeader ("leader " alone: released)
//   exit stopped|lost
// SIGTERM or SIGINT stops it cleanly (it releases the Lease); it dies with its parent.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <string>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>

#include "k8s/leader_election.h"
#include "system/command_line.h"

namespace {

using namespace bpfchain;

long long monotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// Seconds, fractions allowed.
CLI::Option* seconds(CLI::App& app, const char* name, std::chrono::milliseconds& out) {
  return app
      .add_option_function<double>(
          name,
          [&out](double s) { out = std::chrono::milliseconds(static_cast<int64_t>(s * 1000.0)); },
          "seconds")
      ->type_name("S");
}

} // namespace

int main(int argc, char** argv) {
  // A candidate must not outlive the test that started it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1)
    return 1;

  std::string kubeconfig;
  k8s::LeaderElectionConfig config;
  config.leaseNamespace = "default";
  cli::CommandLine cl("bpfchain-test-leader-candidate",
                      "One leader-election candidate, for tests; one line per event on stdout.");
  CLI::App& app = cl.app();
  app.add_option("--kubeconfig", kubeconfig, "the API server")->required();
  app.add_option("--identity", config.identity, "the candidate's identity")->required();
  app.add_option("--lease", config.leaseName, "the Lease's name")->required();
  app.add_option("--namespace", config.leaseNamespace, "the Lease's namespace");
  seconds(app, "--lease-duration", config.leaseDuration);
  seconds(app, "--renew-deadline", config.renewDeadline);
  seconds(app, "--retry-period", config.retryPeriod);
  if (auto exit = cl.parse(argc, argv))
    return *exit;

  // Signals go to one thread that turns them into a stop; blocked before any thread starts so
  // that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1); // from main: the run ended without a signal
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto kube = k8s::loadKubeconfig(kubeconfig);
  if (!kube)
    return cl.usageError(kube.error().message());
  auto client = k8s::Client::create(*kube);
  if (!client)
    return cl.usageError(client.error().message());
  auto elector = k8s::LeaderElector::create(
      **client, config,
      {.onStartedLeading =
           [](const std::stop_token&) { say("leading " + std::to_string(monotonicMs())); },
       .onStoppedLeading = [] { say("stopped " + std::to_string(monotonicMs())); },
       .onNewLeader = [](const std::string& identity) { say("leader " + identity); }});
  if (!elector)
    return cl.usageError(elector.error().message());

  std::thread signalWaiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal != SIGUSR1)
      (*elector)->stop();
  });
  say("ready " + std::to_string(monotonicMs()));
  k8s::ElectionEnd end = (*elector)->run();
  if (!(*elector)->lastError().empty())
    std::fprintf(stderr, "leader-candidate %s: last error: %s\n", config.identity.c_str(),
                 (*elector)->lastError().c_str());
  say(end == k8s::ElectionEnd::Stopped ? "exit stopped" : "exit lost");
  pthread_kill(signalWaiter.native_handle(), SIGUSR1); // ends the waiter if no signal came
  signalWaiter.join();
  return 0;
}
