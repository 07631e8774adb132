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

int usage(const char* why) {
  std::fprintf(stderr,
               "leader-candidate: %s\nusage: bpfchain-test-leader-candidate --kubeconfig F "
               "--identity X --lease NAME [--namespace NS] [--lease-duration s] "
               "[--renew-deadline s] [--retry-period s]\n",
               why);
  return 2;
}

std::chrono::milliseconds seconds(const char* text) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::strtod(text, nullptr) * 1000.0));
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
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--kubeconfig")
      kubeconfig = value;
    else if (flag == "--identity")
      config.identity = value;
    else if (flag == "--lease")
      config.leaseName = value;
    else if (flag == "--namespace")
      config.leaseNamespace = value;
    else if (flag == "--lease-duration")
      config.leaseDuration = seconds(value);
    else if (flag == "--renew-deadline")
      config.renewDeadline = seconds(value);
    else if (flag == "--retry-period")
      config.retryPeriod = seconds(value);
    else
      return usage(("unknown flag " + flag).c_str());
  }
  if (argc % 2 == 0 || kubeconfig.empty())
    return usage("--kubeconfig, --identity and --lease take a value each");

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
    return usage(kube.error().message().c_str());
  auto client = k8s::Client::create(*kube);
  if (!client)
    return usage(client.error().message().c_str());
  auto elector = k8s::LeaderElector::create(
      **client, config,
      {.onStartedLeading =
           [](const std::stop_token&) { say("leading " + std::to_string(monotonicMs())); },
       .onStoppedLeading = [] { say("stopped " + std::to_string(monotonicMs())); },
       .onNewLeader = [](const std::string& identity) { say("leader " + identity); }});
  if (!elector)
    return usage(elector.error().message().c_str());

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
