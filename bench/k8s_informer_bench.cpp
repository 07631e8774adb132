// The informer at scale (DESIGN.md sections 6 and 9): N custom resources of ~1 KiB spec each
// (a BenchWidget CRD of this benchmark's own, shaped like a chain: node selector, hook, three
// programs with images, map arguments and global data), then per run
//   sync      time from start() until hasSynced(): the first list, paginated, into the cache;
//   rss       VmRSS (/proc/self/status) before start() and after sync, and the growth per
//             object; again after malloc_trim(0), which leaves what the cache really holds;
//   watch     M merge patches to M objects by `writers` threads: time from the first patch
//             until the handler has seen all M, and each change's latency from its patch being
//             sent to its handler call (p50, p99);
//   list      for comparison, one plain Client::list of the same objects (no cache).
// Every run is a fresh process (this binary re-executes itself), so its memory is the
// informer's alone; the table gives the median of the runs.
//
// It needs a control plane, e.g. the test bed's:
//   kc=$(scripts/local-cluster.sh up)        # prints the kubeconfig; `down` when done
//   build/bin/bpfchain-bench-k8s-informer --kubeconfig "$kc" [--objects 10000] [--changes 1000]
//       [--runs 3] [--page-size 500] [--writers 8] [--first-list-from-cache] [--delete]
// The objects are created once and kept for later invocations; --delete removes them and the
// CRD at the end. --first-list-from-cache: resourceVersion "0" as client-go's first list (the
// apiserver then answers from its watch cache, unpaginated) instead of a consistent paginated
// read.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <malloc.h>
#include <map>
#include <mutex>
#include <set>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "command_line.h"
#include "k8s/client.h"
#include "k8s/informer.h"
#include "parallel.h"
#include "statistics.h"

extern char** environ;

using namespace bpfchain;
using bench::parallel;
using bench::percentile;
using namespace bpfchain::k8s;
using SteadyClock = std::chrono::steady_clock;

namespace {

const Resource kBenchWidgets{"bench.bpfchain.io", "v1", "benchwidgets", "BenchWidget", false};

struct Options {
  std::string kubeconfig;
  int objects = 10000;
  int changes = 1000;
  int runs = 3;
  int64_t pageSize = 500;
  int writers = 8;
  bool firstListFromCache = false;
  bool deleteAtEnd = false;
  bool measureOnce = false; // internal: one run, in this process
};

const bench::CommandLine kCommandLine{
    "bpfchain-bench-k8s-informer",
    "The informer at scale against the control plane of --kubeconfig."};

Options parseOptions(int argc, char** argv) {
  Options o;
  kCommandLine.parse(argc, argv, [&](CLI::App& app) {
    app.add_option("--kubeconfig", o.kubeconfig, "kubeconfig of the control plane to use")
        ->type_name("PATH")
        ->required();
    app.add_option("--objects", o.objects, "objects to create")->capture_default_str();
    app.add_option("--changes", o.changes, "objects to patch (at most --objects)")
        ->capture_default_str();
    app.add_option("--runs", o.runs, "runs, each in a process of its own")->capture_default_str();
    app.add_option("--page-size", o.pageSize, "the list's page size")->capture_default_str();
    app.add_option("--writers", o.writers, "concurrent writers")->capture_default_str();
    app.add_flag("--first-list-from-cache", o.firstListFromCache,
                 "the first list served from the watch cache");
    app.add_flag("--delete", o.deleteAtEnd, "delete the objects at the end");
    app.add_flag("--measure-once", o.measureOnce, "internal: one run, in this process")
        ->group(""); // hidden
  });
  if (o.kubeconfig.empty() || o.objects < 1 || o.changes < 0 || o.changes > o.objects ||
      o.runs < 1 || o.writers < 1)
    kCommandLine.usage();
  return o;
}

std::unique_ptr<Client> connect(const Options& o) {
  auto config = loadKubeconfig(o.kubeconfig);
  if (!config)
    kCommandLine.die(config.error().message());
  auto client = Client::create(*config);
  if (!client)
    kCommandLine.die(client.error().message());
  return std::move(*client);
}

long rssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

double msSince(SteadyClock::time_point t0, SteadyClock::time_point t1 = SteadyClock::now()) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

std::string objectName(int i) {
  char name[32];
  std::snprintf(name, sizeof name, "bw-%05d", i);
  return name;
}

// ~1 KiB of spec, shaped like what a chain operator stores.
Json benchWidget(int i) {
  std::string n = std::to_string(i);
  std::string digest(64, '0');
  for (size_t k = 0; k < n.size(); ++k)
    digest[k] = n[k];
  std::string program = R"({"name":"PROG-)" + n +
                        R"(","image":"registry.example.com/bpf/PROG@sha256:)" + digest +
                        R"(","version":"1.4.2","mapArgs":{"rate":"1000","burst":"200",)"
                        R"("allow":"10.0.0.0/8,192.168.0.0/16"},"globalData":{"sampling":16,)"
                        R"("verbose":false}})";
  auto programNamed = [&](const std::string& p) {
    std::string text = program;
    for (size_t at; (at = text.find("PROG")) != std::string::npos;)
      text.replace(at, 4, p);
    return text;
  };
  return Json::parse(
      R"({"apiVersion":"bench.bpfchain.io/v1","kind":"BenchWidget","metadata":{"name":")" +
      objectName(i) +
      R"(","labels":{"app.kubernetes.io/part-of":"bpfchain-bench"}},"spec":{)"
      R"("nodeSelector":{"matchLabels":{"kubernetes.io/os":"linux","node-role.kubernetes.io/worker":""}},)"
      R"("interface":"eth0","hook":"tc-ingress","priority":100,"revision":0,"programs":[)" +
      programNamed("ratelimit") + "," + programNamed("connlimit") + "," +
      programNamed("telemetry") + "]}}");
}

const char* kCrd = R"({
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "benchwidgets.bench.bpfchain.io"},
  "spec": {
    "group": "bench.bpfchain.io", "scope": "Cluster",
    "names": {"plural": "benchwidgets", "singular": "benchwidget", "kind": "BenchWidget"},
    "versions": [{"name": "v1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]
  }
})";

void ensureCrd(Client& client) {
  auto created = client.create(resources::kCustomResourceDefinitions, Json::parse(kCrd));
  if (!created && !created.error().alreadyExists())
    kCommandLine.die("create the BenchWidget CRD: " + created.error().describe());
  for (int i = 0; i < 600; ++i) {
    auto crd =
        client.get(resources::kCustomResourceDefinitions, "", "benchwidgets.bench.bpfchain.io");
    if (crd && crd->has_field("status") && crd->at("status").has_field("conditions") &&
        crd->at("status").at("conditions").is_array())
      for (const auto& c : crd->at("status").at("conditions").as_array())
        if (stringAt(c, {"type"}) == "Established" && stringAt(c, {"status"}) == "True")
          return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kCommandLine.die("the BenchWidget CRD was not established within 60 s");
}

// Exactly bw-00000 .. bw-<N-1> exist afterwards.
void populate(Client& client, const Options& o) {
  auto existing = client.list(kBenchWidgets, "", {.limit = 1000});
  if (!existing)
    kCommandLine.die("list: " + existing.error().describe());
  std::set<std::string> have;
  for (const auto& item : existing->items)
    have.insert(nameOf(item));
  std::vector<int> missing;
  for (int i = 0; i < o.objects; ++i)
    if (!have.erase(objectName(i)))
      missing.push_back(i);
  std::vector<std::string> extra(have.begin(), have.end());
  auto t0 = SteadyClock::now();
  std::atomic<int> failed{0};
  parallel(static_cast<int>(missing.size()), o.writers, [&](int k) {
    for (int attempt = 0;; ++attempt) {
      auto r = client.create(kBenchWidgets, benchWidget(missing[k]));
      if (r.ok() || r.error().alreadyExists())
        return;
      if (attempt == 5 || !r.error().retriable()) {
        std::fprintf(stderr, "create %s: %s\n", objectName(missing[k]).c_str(),
                     r.error().describe().c_str());
        ++failed;
        return;
      }
    }
  });
  parallel(static_cast<int>(extra.size()), o.writers,
           [&](int k) { (void)client.remove(kBenchWidgets, "", extra[k]); });
  if (failed)
    kCommandLine.die(std::to_string(failed.load()) + " creates failed");
  if (!missing.empty())
    std::fprintf(stderr, "created %zu objects in %.1f s (%d writers)\n", missing.size(),
                 msSince(t0) / 1000, o.writers);
  std::fprintf(stderr, "spec size: %zu bytes; object: %zu bytes as JSON\n",
               benchWidget(0).at("spec").serialize().size(), benchWidget(0).serialize().size());
}

struct RunResult {
  std::map<std::string, double> values;
};

// One run, in this process; prints "RESULT key=value ..." on stdout.
void measureOnce(const Options& o) {
  auto client = connect(o);
  long rssBefore = rssKiB();

  // The changes' send times by object index; the handler looks theirs up.
  std::mutex mu;
  std::condition_variable delivered;
  std::vector<SteadyClock::time_point> sentAt(o.changes);
  std::vector<double> latencies;
  SteadyClock::time_point lastDelivery;
  // This run's changes carry it: a patch that changed nothing would send no event.
  const int64_t revision = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();

  Informer informer(*client, kBenchWidgets,
                    {.pageSize = o.pageSize, .consistentFirstList = !o.firstListFromCache});
  informer.addEventHandler({.onUpdate = [&](const Json&, const Json& obj) {
    auto now = SteadyClock::now();
    const Json& spec = obj.at("spec");
    if (!spec.has_field("revision") || spec.at("revision").as_number().to_int64() != revision)
      return;
    int index = std::stoi(nameOf(obj).substr(3));
    std::lock_guard lock(mu);
    if (index >= o.changes)
      return;
    latencies.push_back(msSince(sentAt[index], now));
    lastDelivery = now;
    if (static_cast<int>(latencies.size()) == o.changes)
      delivered.notify_all();
  }});
  auto t0 = SteadyClock::now();
  informer.start();
  if (!informer.waitForSync(std::chrono::minutes(10)))
    kCommandLine.die("no sync within 10 min: " + informer.stats().lastError);
  double syncMs = msSince(t0);
  long rssAfter = rssKiB();
  // What the cache keeps, once the allocator has returned the list's freed buffers to the system.
  ::malloc_trim(0);
  long rssTrimmed = rssKiB();
  size_t cached = informer.list().size();
  if (cached != static_cast<size_t>(o.objects))
    kCommandLine.die("cache holds " + std::to_string(cached) + " objects, not " +
                     std::to_string(o.objects));

  // M changes, each to its own object, by `writers` threads.
  std::string patch = R"({"spec":{"revision":)" + std::to_string(revision) + "}}";
  auto w0 = SteadyClock::now();
  std::atomic<int> failed{0};
  parallel(o.changes, o.writers, [&](int i) {
    {
      std::lock_guard lock(mu);
      sentAt[i] = SteadyClock::now();
    }
    if (!client->patch(kBenchWidgets, "", objectName(i), PatchType::Merge, Json::parse(patch)))
      ++failed;
  });
  double writesMs = msSince(w0);
  if (failed)
    kCommandLine.die(std::to_string(failed.load()) + " patches failed");
  {
    std::unique_lock lock(mu);
    if (!delivered.wait_for(lock, std::chrono::minutes(5),
                            [&] { return static_cast<int>(latencies.size()) == o.changes; }))
      kCommandLine.die("only " + std::to_string(latencies.size()) + " of " +
                       std::to_string(o.changes) + " changes delivered within 5 min");
  }
  double watchMs = o.changes ? msSince(w0, lastDelivery) : 0;
  auto stats = informer.stats();
  informer.stop();

  auto l0 = SteadyClock::now();
  auto plain = client->list(kBenchWidgets, "", {.limit = o.pageSize});
  double listMs = msSince(l0);
  if (!plain)
    kCommandLine.die("list: " + plain.error().describe());

  std::printf("RESULT sync_ms=%.1f rss_before_mib=%.1f rss_synced_mib=%.1f "
              "rss_per_object_kib=%.2f rss_trimmed_mib=%.1f rss_trimmed_per_object_kib=%.2f "
              "watch_ms=%.1f writes_ms=%.1f changes_per_s=%.0f "
              "latency_p50_ms=%.2f latency_p99_ms=%.2f plain_list_ms=%.1f lists=%llu errors=%llu\n",
              syncMs, rssBefore / 1024.0, rssAfter / 1024.0,
              static_cast<double>(rssAfter - rssBefore) / o.objects, rssTrimmed / 1024.0,
              static_cast<double>(rssTrimmed - rssBefore) / o.objects, watchMs, writesMs,
              watchMs > 0 ? o.changes * 1000.0 / watchMs : 0.0, percentile(latencies, 0.5),
              percentile(latencies, 0.99), listMs, static_cast<unsigned long long>(stats.lists),
              static_cast<unsigned long long>(stats.errors));
}

// Runs this binary with `args`; its stdout.
std::string runSelf(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0)
    kCommandLine.die("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> argv;
  std::string self = "/proc/self/exe";
  argv.push_back(self.data());
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ) != 0)
    kCommandLine.die("spawn a run");
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    kCommandLine.die("a run failed");
  return out;
}

RunResult parseResult(const std::string& out) {
  RunResult r;
  auto at = out.find("RESULT ");
  if (at == std::string::npos)
    kCommandLine.die("a run printed no RESULT line");
  std::string line = out.substr(at + 7, out.find('\n', at) - at - 7);
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string::npos)
      end = line.size();
    std::string field = line.substr(pos, end - pos);
    auto eq = field.find('=');
    if (eq != std::string::npos)
      r.values[field.substr(0, eq)] = std::strtod(field.c_str() + eq + 1, nullptr);
    pos = end + 1;
  }
  return r;
}

} // namespace

int main(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  return kCommandLine.run([&] {
    if (o.measureOnce) {
      measureOnce(o);
      return 0;
    }
    auto client = connect(o);
    ensureCrd(*client);
    populate(*client, o);
    client.reset();

    std::vector<std::string> args{"--measure-once",
                                  "--kubeconfig",
                                  o.kubeconfig,
                                  "--objects",
                                  std::to_string(o.objects),
                                  "--changes",
                                  std::to_string(o.changes),
                                  "--page-size",
                                  std::to_string(o.pageSize),
                                  "--writers",
                                  std::to_string(o.writers)};
    if (o.firstListFromCache)
      args.emplace_back("--first-list-from-cache");
    std::vector<RunResult> runs;
    for (int run = 0; run < o.runs; ++run) {
      std::string out = runSelf(args);
      std::fprintf(stderr, "run %d: %s", run + 1, out.c_str());
      runs.push_back(parseResult(out));
    }

    std::printf("informer: %d objects (~1 KiB spec), first list %s, page size %lld, %d changes by "
                "%d writers; median of %d runs\n",
                o.objects, o.firstListFromCache ? "resourceVersion=0 (watch cache)" : "consistent",
                static_cast<long long>(o.pageSize), o.changes, o.writers, o.runs);
    for (const auto& [key, unused] : runs.front().values) {
      std::vector<double> v;
      for (const auto& r : runs)
        v.push_back(r.values.at(key));
      std::printf("  %-28s %10.2f   (runs:", key.c_str(), percentile(v, 0.5));
      for (double x : v)
        std::printf(" %.2f", x);
      std::printf(")\n");
    }

    if (o.deleteAtEnd) {
      client = connect(o);
      parallel(o.objects, o.writers,
               [&](int i) { (void)client->remove(kBenchWidgets, "", objectName(i)); });
      (void)client->remove(resources::kCustomResourceDefinitions, "",
                           "benchwidgets.bench.bpfchain.io");
    }
    return 0;
  });
}
