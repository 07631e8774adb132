// bpfchain-agent: runs a node's chains (DESIGN.md sections 2-5, 7, 10).
//   bpfchain-agent --config FILE            standalone: FILE is a BpfNodeConfig spec (YAML)
//   bpfchain-agent --node-name NAME [--kubeconfig FILE]
//                                           cluster mode: the BpfNodeConfig called NAME
//     [--revision-namespace NS]             where its chain revisions are (the operator's
//                                           namespace; default $POD_NAMESPACE, else
//                                           bpfchain-system)
// Common flags: --metrics-address HOST:PORT (":9450"), --socket PATH, --state-dir DIR,
// --bpffs DIR, --trusted-key FILE (repeatable), --require-signatures, --detach-on-exit,
// --resync-seconds N (30), --heartbeat-seconds N (60; cluster mode: how often the agent
// refreshes status.agent.heartbeatTime when nothing else changed, so the operator tells an agent
// that stopped from one with nothing to say; 1,000 nodes make ~17 small writes/s; written by the
// first pass past the interval, passes come at least every --resync-seconds),
// --tc-priority N (cls_bpf filter priority where TCX is missing),
// --netns PATH (manage that network namespace's interfaces: the data plane runs there while the
// API and metrics connections and package downloads stay in the agent's own namespace;
// simulated nodes use it).
// --cni-conf-dir DIR keeps bpfchain-cni's entry in that CNI configuration while the agent runs
// (cni_config_keeper.h; plugin binary from --cni-plugin into --cni-bin-dir), and
// --cni-failure-policy fail|ignore is written into the entry. When the agent stops, the entry
// stays for the next agent (a restart or an upgrade), unless --cni-uninstall-on-exit, or
// --cni-owner NAMESPACE/NAME (its DaemonSet; cluster mode) shows an uninstall: that DaemonSet
// gone or being deleted, its namespace being deleted, or the agent's credentials refused
// (cni_exit.h).
//   bpfchain-agent status [--socket PATH] [-o text|json]
//                                           asks the running agent over its socket what runs
//                                           on each interface hook (status_view.h)
// --log-level and --log-format: the one logger's (system/log.h), as in every binary.
// SIGTERM/SIGINT stop the agent; chains stay attached and a new agent adopts them, unless
// --detach-on-exit asks for everything to be detached and unpinned.
#include <algorithm>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <future>
#include <iostream>
#include <optional>
#include <sched.h>
#include <thread>
#include <unistd.h>

#include "dataplane/features.h"
#include "k8s/request_metrics.h"
#include "metrics/metrics_server.h"
#include "metrics/process_collector.h"
#include "node-agent/agent.h"
#include "node-agent/agent_metrics.h"
#include "node-agent/bpffs_mount.h"
#include "node-agent/cluster_source.h"
#include "node-agent/cni_config_keeper.h"
#include "node-agent/cni_exit.h"
#include "node-agent/cni_handler.h"
#include "node-agent/cni_owner.h"
#include "node-agent/link_monitor.h"
#include "node-agent/standalone_source.h"
#include "node-agent/status_view.h"
#include "packages/package_cache.h"
#include "system/command_line.h"
#include "system/log.h"
#include "system/stop_signal.h"
#include "system/version.h"

using namespace bpfchain;
using namespace bpfchain::agent;

namespace {

struct Flags {
  std::string config;
  std::string nodeName;
  std::string kubeconfig;
  std::string revisionNamespace; // "" = $POD_NAMESPACE, else bpfchain-system
  std::string metricsAddress = ":9450";
  std::string socket = "/run/bpfchain/agent.sock";
  std::string stateDir = "/var/lib/bpfchain";
  std::string bpffs = "/sys/fs/bpf/bpfchain";
  std::vector<std::string> trustedKeys;
  bool requireSignatures = false;
  bool detachOnExit = false;
  int resyncSeconds = 30;
  int heartbeatSeconds = 60;
  int tcPriority = 1;
  std::string netns;
  std::string cniConfDir; // keep bpfchain-cni in this CNI configuration (cni_config_keeper.h)
  std::string cniBinDir = "/opt/cni/bin";
  std::string cniPlugin;        // default: bpfchain-cni beside this binary
  std::string cniFailurePolicy; // "" = the plugin's default, or what the entry says
  std::string cniOwner;         // NAMESPACE/NAME of the agent's DaemonSet (cni_exit.h)
  bool cniUninstallOnExit = false;
};

constexpr const char* kSynopsis =
    "Runs a node's chains. One of:\n"
    "  --config FILE                  standalone: FILE is a BpfNodeConfig spec (YAML)\n"
    "  --node-name NAME [--kubeconfig FILE] [--revision-namespace NS]\n"
    "                                 cluster mode: the BpfNodeConfig called NAME\n"
    "  status [--socket PATH] [-o text|json]\n"
    "                                 what the running agent runs on each interface hook\n";

// `bpfchain-agent status`'s flags.
struct StatusFlags {
  std::string socket = Flags{}.socket;
  std::string output = "text";
};

CLI::Validator oneOf(const std::vector<std::string>& values) {
  return CLI::Validator(
      [values](std::string& value) -> std::string {
        if (std::find(values.begin(), values.end(), value) != values.end())
          return {};
        std::string want = "want " + values.front();
        for (size_t i = 1; i < values.size(); ++i)
          want += (i + 1 == values.size() ? " or " : ", ") + values[i];
        return want + ", not \"" + value + "\"";
      },
      "");
}

// What the flags of a run (not `status`) cannot be together, as a usage error; nullopt when
// they fit.
std::optional<std::string> checkFlags(const Flags& f) {
  if (f.config.empty() == f.nodeName.empty())
    return "give exactly one of --config FILE and --node-name NAME";
  if (!f.kubeconfig.empty() && f.nodeName.empty())
    return "--kubeconfig needs --node-name";
  if (!f.revisionNamespace.empty() && f.nodeName.empty())
    return "--revision-namespace needs --node-name";
  if (f.resyncSeconds < 1)
    return "--resync-seconds: must be at least 1";
  if (f.heartbeatSeconds < 1)
    return "--heartbeat-seconds: must be at least 1";
  if (f.cniConfDir.empty() &&
      (!f.cniFailurePolicy.empty() || !f.cniOwner.empty() || f.cniUninstallOnExit))
    return "--cni-failure-policy, --cni-owner and --cni-uninstall-on-exit need "
           "--cni-conf-dir";
  if (!f.cniFailurePolicy.empty() && f.cniFailurePolicy != "fail" && f.cniFailurePolicy != "ignore")
    return "--cni-failure-policy: want fail or ignore, not " + f.cniFailurePolicy;
  if (!f.cniOwner.empty() && f.nodeName.empty())
    return "--cni-owner needs --node-name (cluster mode)";
  if (!f.cniOwner.empty() && !splitOwner(f.cniOwner))
    return "--cni-owner: want NAMESPACE/NAME (the agent's DaemonSet), not " + f.cniOwner;
  return std::nullopt;
}

// The command line (DESIGN.md section 10): nullopt to run (`status` says whether the status
// command was asked for), else the exit status.
std::optional<int> parseFlags(int argc, char** argv, Flags& f, StatusFlags& status,
                              bool& statusCommand) {
  cli::CommandLine cl("bpfchain-agent", kSynopsis);
  CLI::App& app = cl.app();
  CLI::App* statusApp = app.add_subcommand(
      "status", "asks the running agent over its socket what runs on each interface hook");
  statusApp->add_option("--socket", status.socket, "the agent's socket")
      ->type_name("PATH")
      ->capture_default_str();
  statusApp->add_option("-o,--output", status.output, "text or json")
      ->type_name("FORMAT")
      ->check(oneOf({"text", "json"}));

  auto number = [](CLI::Option* option) {
    return option->type_name("N")->check(cli::integerIn(0, 1000000))->capture_default_str();
  };
  app.add_option("--config", f.config, "standalone: a BpfNodeConfig spec (YAML)")
      ->type_name("FILE");
  app.add_option("--node-name", f.nodeName, "cluster mode: the BpfNodeConfig called NAME")
      ->type_name("NAME");
  app.add_option("--kubeconfig", f.kubeconfig,
                 "cluster mode: the API server (default: $KUBECONFIG, else in-cluster)")
      ->type_name("FILE");
  app.add_option("--revision-namespace", f.revisionNamespace,
                 "cluster mode: where the operator's chain revisions are (default: "
                 "$POD_NAMESPACE, else bpfchain-system)")
      ->type_name("NS");
  app.add_option("--metrics-address", f.metricsAddress, "/metrics, /healthz and /readyz")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--socket", f.socket, "the socket for bpfchain-cni and `status`")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--state-dir", f.stateDir, "state files and the package cache")
      ->type_name("DIR")
      ->capture_default_str();
  app.add_option("--bpffs", f.bpffs, "where pins go (mounted when no bpffs is)")
      ->type_name("DIR")
      ->capture_default_str();
  app.add_option("--trusted-key", f.trustedKeys, "a package signing key (repeatable)")
      ->type_name("FILE");
  app.add_flag("--require-signatures", f.requireSignatures, "refuse unsigned packages");
  app.add_flag("--detach-on-exit", f.detachOnExit, "detach and unpin everything on exit");
  number(app.add_option("--resync-seconds", f.resyncSeconds, "the longest gap between passes"));
  number(app.add_option("--heartbeat-seconds", f.heartbeatSeconds,
                        "cluster mode: how often status.agent.heartbeatTime is refreshed"));
  number(app.add_option("--tc-priority", f.tcPriority,
                        "cls_bpf filter priority where TCX is missing"));
  app.add_option("--netns", f.netns, "manage that network namespace's interfaces")
      ->type_name("PATH");
  app.add_option("--cni-conf-dir", f.cniConfDir,
                 "keep bpfchain-cni's entry in that CNI configuration while running")
      ->type_name("DIR");
  app.add_option("--cni-bin-dir", f.cniBinDir, "where the plugin binary goes")
      ->type_name("DIR")
      ->capture_default_str();
  app.add_option("--cni-plugin", f.cniPlugin, "the plugin (default: bpfchain-cni beside this)")
      ->type_name("PATH");
  app.add_option("--cni-failure-policy", f.cniFailurePolicy, "written into the entry")
      ->type_name("fail|ignore");
  app.add_option("--cni-owner", f.cniOwner,
                 "cluster mode: the agent's DaemonSet; its removal removes the entry")
      ->type_name("NAMESPACE/NAME");
  app.add_flag("--cni-uninstall-on-exit", f.cniUninstallOnExit, "remove the entry on exit");
  cl.logFlags();
  if (auto exit = cl.parse(argc, argv))
    return exit;
  statusCommand = statusApp->parsed();
  if (statusCommand)
    return std::nullopt;
  if (auto problem = checkFlags(f))
    return cl.usageError(*problem);
  return std::nullopt;
}

int fail(const Error& e) {
  log::error("cannot run", {{"error", e.message()}});
  return 1;
}

// `bpfchain-agent status`: 0 when the agent answered, 1 when it could not be asked.
int runStatus(const StatusFlags& flags) {
  const std::string& socket = flags.socket;
  const std::string& output = flags.output;
  v1::Request request;
  request.mutable_status();
  auto response = AgentClient::call(socket, request, std::chrono::seconds(10));
  if (!response) {
    std::cerr << "bpfchain-agent status: cannot ask the agent at " << socket << ": "
              << response.error().message() << "\n";
    return 1;
  }
  if (!response->has_status()) {
    std::cerr << "bpfchain-agent status: the agent at " << socket
              << " answered without a status: " << response->reason() << " " << response->message()
              << "\n";
    return 1;
  }
  std::cout << (output == "json" ? renderStatusJson(response->status())
                                 : renderStatusText(response->status()));
  return 0;
}

// The package cache under --state-dir, checking signatures as the flags say.
Result<packages::PackageCache> openPackageCache(const Flags& flags) {
  packages::CacheOptions cacheOptions;
  cacheOptions.trustedKeyFiles = flags.trustedKeys;
  cacheOptions.requireSignatures = flags.requireSignatures;
  return packages::PackageCache::open(flags.stateDir + "/packages", cacheOptions);
}

ReconcilerOptions reconcilerOptions(const Flags& flags) {
  ReconcilerOptions options;
  options.bpffsRoot = flags.bpffs;
  options.stateDir = flags.stateDir;
  options.attach.tcPriority = static_cast<uint32_t>(flags.tcPriority);
  return options;
}

// Where cluster mode finds the operator's chain revisions: --revision-namespace, else
// $POD_NAMESPACE, else bpfchain-system.
std::string revisionNamespaceOf(const Flags& flags) {
  std::string revisionNamespace = flags.revisionNamespace;
  if (const char* podNamespace = std::getenv("POD_NAMESPACE");
      revisionNamespace.empty() && podNamespace && *podNamespace)
    revisionNamespace = podNamespace;
  if (revisionNamespace.empty())
    revisionNamespace = "bpfchain-system";
  return revisionNamespace;
}

// The chains to run: the --config file (standalone) or the node's BpfNodeConfig (cluster).
Result<std::unique_ptr<SpecSource>> openSource(const Flags& flags) {
  if (!flags.config.empty()) {
    auto standalone = StandaloneSource::create(flags.config, flags.stateDir + "/status.yaml");
    if (!standalone)
      return standalone.error();
    return std::unique_ptr<SpecSource>(std::move(*standalone));
  }
  auto cluster = ClusterSource::create({flags.nodeName, flags.kubeconfig, BPFCHAIN_VERSION,
                                        std::chrono::seconds(flags.heartbeatSeconds),
                                        revisionNamespaceOf(flags), flags.stateDir});
  if (!cluster)
    return cluster.error();
  return std::unique_ptr<SpecSource>(std::move(*cluster));
}

// Pins go on a bpffs at --bpffs; one is mounted there when none is (and stays mounted).
Result<void> prepareBpffs(const std::string& root) {
  auto bpffs = ensureBpffs(root);
  if (!bpffs)
    return bpffs.error();
  if (bpffs->mountPoint.empty())
    log::info("pins on a bpffs", {{"bpffs", root}});
  else
    log::info("mounted a bpffs (none was mounted there); it stays mounted after the agent exits",
              {{"mountPoint", bpffs->mountPoint}, {"bpffs", root}});
  return {};
}

// --netns's namespace, or no descriptor when the agent manages its own.
Result<FD> openManagedNetns(const std::string& path) {
  if (path.empty())
    return FD();
  FD netns(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns)
    return systemError(errno, "--netns " + path);
  return netns;
}

// /metrics with the agent's and the process's collectors, /readyz (source and data plane) and
// /healthz (the reconcile loop).
Result<std::unique_ptr<metrics::MetricsServer>>
serveMetrics(const std::string& address, AgentMetrics& metrics, SpecSource& source, Agent& agent) {
  auto server = metrics::MetricsServer::start(address);
  if (!server)
    return server;
  for (const auto& c : metrics.collectables())
    (*server)->add(c);
  (*server)->add(metrics::processCollector());
  (*server)->addReadinessCheck("source", [&source] { return source.notReady(); });
  (*server)->addReadinessCheck("dataplane", [&agent] { return agent.notReady(); });
  (*server)->addLivenessCheck("reconcile-loop",
                              [&agent] { return agent.notAlive(std::chrono::seconds(300)); });
  return server;
}

// What the data-plane thread works with; all of it outlives the thread.
struct DataPlane {
  const Flags& flags;
  const ReconcilerOptions& options;
  ProgramResolver& resolver;
  AgentMetrics& metrics;
  SpecSource& source;
  Agent& agent;
  const FD& netns;
};

// The data-plane thread: everything that names interfaces runs in the managed namespace.
// `started` gets the outcome of the set-up; the agent then runs until it is stopped.
void runDataPlane(const DataPlane& plane, std::promise<Result<void>>& started) {
  const Flags& flags = plane.flags;
  Agent& agent = plane.agent;
  if (plane.netns && setns(plane.netns.get(), CLONE_NEWNET) != 0) {
    started.set_value(systemError(errno, "enter --netns " + flags.netns));
    return;
  }
  auto reconciler = NodeReconciler::create(plane.options, plane.resolver, &plane.metrics);
  if (!reconciler) {
    started.set_value(std::move(reconciler).error());
    return;
  }
  auto links = LinkMonitor::start([&](Interfaces now) { agent.triggerLinks(std::move(now)); });
  if (!links) {
    started.set_value(std::move(links).error());
    return;
  }
  // Started here so that its threads, too, are in the managed namespace (pod veths).
  CniHandler cni(
      **reconciler, plane.source, flags.nodeName, BPFCHAIN_VERSION, [&] { agent.refreshStatus(); },
      &plane.metrics);
  auto socket = AgentSocketServer::start(flags.socket, cni);
  if (!socket) {
    started.set_value(std::move(socket).error().context("--socket " + flags.socket));
    return;
  }
  started.set_value({});
  agent.run(**reconciler);
  (*socket)->stop();
  if (flags.detachOnExit) {
    (*reconciler)->detachAll();
    log::info("detached every chain (--detach-on-exit)");
  } else {
    log::info("chains stay attached; the next agent adopts them");
  }
}

// Keeps bpfchain-cni's entry in --cni-conf-dir while the agent runs, once the socket serves: a
// pod ADD it lets in finds this agent. Nothing when the entry is not the agent's to keep, or
// when it cannot be kept (the agent then stops).
std::unique_ptr<CniConfigKeeper> keepCniEntry(const Flags& flags, metrics::MetricsServer& server) {
  if (flags.cniConfDir.empty())
    return nullptr;
  cni::InstallOptions install;
  install.confDir = flags.cniConfDir;
  install.binDir = flags.cniBinDir;
  install.socketPath = flags.socket;
  install.selfPath = flags.cniPlugin;
  if (!flags.cniFailurePolicy.empty())
    install.failurePolicy = flags.cniFailurePolicy;
  if (install.selfPath.empty()) {
    std::error_code ec;
    install.selfPath =
        (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "bpfchain-cni")
            .string();
  }
  auto keeper = CniConfigKeeper::start(install);
  if (!keeper) {
    stop_signal::request(); // fall through to a clean stop of the loop
    log::error("cannot keep the CNI entry; stopping", {{"error", keeper.error().message()}});
    return nullptr;
  }
  server.add((*keeper)->collectable());
  return std::move(*keeper);
}

// On exit the entry stays for the next agent (a restart or an upgrade) unless an uninstall
// shows (cni_exit.h).
void releaseCniEntry(const Flags& flags, CniConfigKeeper& keeper, CniOwner* owner) {
  std::optional<ObjectLookup> daemonSet, nameSpace;
  if (owner && !flags.cniUninstallOnExit) {
    daemonSet = owner->daemonSet();
    if (daemonSet->status == 200 && !daemonSet->deleting)
      nameSpace = owner->nameSpace();
  }
  auto exit = decideCniExit(flags.cniUninstallOnExit, flags.cniOwner, daemonSet, nameSpace);
  log::info(exit.removeEntry ? "removing the bpfchain-cni entry" : "keeping the bpfchain-cni entry",
            {{"why", exit.why}});
  keeper.stop(exit.removeEntry);
}

// Runs the agent until SIGTERM/SIGINT: the exit status.
int run(const Flags& flags) {
  std::error_code ec;
  std::filesystem::create_directories(flags.stateDir, ec);
  if (ec)
    return fail(Error(ec.value(), "create --state-dir " + flags.stateDir + ": " + ec.message()));
  const auto& features = dataplane::kernelFeatures();

  auto cache = openPackageCache(flags);
  if (!cache)
    return fail(cache.error());

  AgentMetrics metrics({BPFCHAIN_VERSION, features.kernelRelease, features.tcx, features.xdpLink});
  metrics.setPackageCounters([&cache] {
    auto s = cache->stats();
    return PackageCounters{s.fetches, s.cacheHits, s.failures};
  });
  k8s::setRequestMetrics(metrics.requestMetrics());
  auto source = openSource(flags);
  if (!source)
    return fail(source.error());
  std::unique_ptr<CniOwner> cniOwner;
  if (!flags.cniOwner.empty()) {
    auto owner = CniOwner::create(flags.kubeconfig, flags.cniOwner);
    if (!owner)
      return fail(owner.error());
    cniOwner = std::move(*owner);
  }

  // After every check of the command line, the keys and the kubeconfig: a bad flag must not
  // leave a mount behind.
  if (auto bpffs = prepareBpffs(flags.bpffs); !bpffs)
    return fail(bpffs.error());
  // Package downloads use the agent's own network (the host's), not --netns's.
  FD ownNetns(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!ownNetns)
    return fail(systemError(errno, "open /proc/thread-self/ns/net"));
  ProgramResolver resolver(*cache, flags.netns.empty() ? -1 : ownNetns.get());
  const ReconcilerOptions options = reconcilerOptions(flags);
  auto netns = openManagedNetns(flags.netns);
  if (!netns)
    return fail(netns.error());

  Agent agent(**source, &metrics, std::chrono::seconds(flags.resyncSeconds));
  auto server = serveMetrics(flags.metricsAddress, metrics, **source, agent);
  if (!server)
    return fail(server.error());

  std::promise<Result<void>> started;
  auto startedFuture = started.get_future();
  const DataPlane plane{flags, options, resolver, metrics, **source, agent, *netns};
  std::thread loop([&] { runDataPlane(plane, started); });
  if (auto ok = startedFuture.get(); !ok) {
    loop.join();
    return fail(ok.error());
  }
  std::unique_ptr<CniConfigKeeper> cniKeeper = keepCniEntry(flags, **server);
  (*source)->start([&] { agent.trigger(); });
  log::info("running", {{"version", BPFCHAIN_VERSION},
                        {flags.config.empty() ? "node" : "config",
                         flags.config.empty() ? flags.nodeName : flags.config},
                        {"kernel", features.kernelRelease},
                        {"tcx", features.tcx},
                        {"xdpLink", features.xdpLink},
                        {"metricsPort", (*server)->port()}});
  stop_signal::wait();
  log::info("stopping");
  if (cniKeeper)
    releaseCniEntry(flags, *cniKeeper, cniOwner.get());
  (*source)->stop();
  agent.stop();
  loop.join();
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  Flags flags;
  StatusFlags statusFlags;
  bool statusCommand = false;
  if (auto exit = parseFlags(argc, argv, flags, statusFlags, statusCommand))
    return *exit;
  if (statusCommand)
    return runStatus(statusFlags);
  stop_signal::install();
  std::signal(SIGPIPE, SIG_IGN);
  return run(flags);
}
