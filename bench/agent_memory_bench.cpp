// Agent resident memory (DESIGN.md section 9: <= 30 MiB with 10 chains x 10 interfaces).
//
// A standalone bpfchain-agent (--config, --netns) manages one network namespace holding
// --interfaces veth pairs (eth0..eth9, peers p0..p9). Its config has --chains chains, every one
// selecting every ethN (/^eth[0-9]+$/), XDP: the worst case of "10 chains on 10 interfaces",
// 100 chain attachments in 10 instances (one root per interface, running all 10 chains).
// Programs per chain, in this order, each with a monitorMaps entry:
//   filter  portfilter, a mapArgs entry, monitor portfilter_stats[0] (sum)
//   count   counter, monitor counter_stats[0] (sum)
//   limit   ratelimit, globalData rate_pps, monitor ratelimit_stats[0] (max-rate)
// Shapes: "mixed" gives chain i the first 1 + i % 3 of them (19 programs per interface, 190 in
// all); "max" gives every chain all three (30 per interface, 300 in all, the most a chain of
// tail calls allows with its root). The baseline is the same agent binary with an empty config
// (`chains: []`) on the same namespace, in the same run.
//
// For each agent: start, wait until state-dir/status.yaml shows every chain Ready on every
// interface (for the baseline: /readyz), wait 2 s, read VmRSS, VmHWM, RssAnon, RssFile and
// RssShmem from /proc/PID/status; then GET /metrics every --scrape-ms (100) for --scrape-s (20)
// seconds (--scrape-ms 0: no scrapes, to tell their effect apart), sampling VmRSS every second,
// and read them again.
//
//   sudo build/bin/bpfchain-bench-agent-memory [--runs 5] [--chains 10] [--interfaces 10]
//       [--scrape-s 20] [--scrape-ms 100] [--shapes idle,mixed,max] [--agent-arg ARG]...
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <signal.h>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "command_line.h"
#include "harness/agent_process.h"
#include "harness/bpffs.h"
#include "harness/http.h"
#include "harness/netns.h"
#include "harness/process.h"
#include "harness/resources.h"

using namespace bpfchain;
using namespace bpfchain::testing;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Options {
  int runs = 5;
  int chains = 10;
  int interfaces = 10;
  int scrapeS = 20;
  int scrapeMs = 100;
  std::vector<std::string> shapes{"idle", "mixed", "max"};
  std::vector<std::string> agentArgs; // passed on, e.g. --resync-seconds 5
};

const bench::CommandLine kCommandLine{
    "bpfchain-bench-agent-memory",
    "A standalone agent's resident memory with --chains chains on --interfaces interfaces (root)."};

Options parseOptions(int argc, char** argv) {
  Options o;
  kCommandLine.parse(argc, argv, [&](CLI::App& app) {
    app.add_option("--runs", o.runs, "runs per shape")->capture_default_str();
    app.add_option("--chains", o.chains, "chains in the max shape")->capture_default_str();
    app.add_option("--interfaces", o.interfaces, "interfaces (1..100)")->capture_default_str();
    app.add_option("--scrape-s", o.scrapeS, "seconds of /metrics scrapes")->capture_default_str();
    app.add_option("--scrape-ms", o.scrapeMs, "ms between scrapes")->capture_default_str();
    app.add_option("--shapes", o.shapes,
                   "agent shapes to measure, comma-separated: idle, mixed, max")
        ->delimiter(',')
        ->check(CLI::IsMember({"idle", "mixed", "max"}));
    app.add_option("--agent-arg", o.agentArgs, "passed on to the agent, repeatable")
        ->type_name("ARG");
  });
  if (o.runs < 1 || o.chains < 1 || o.interfaces < 1 || o.interfaces > 100 || o.scrapeS < 0 ||
      o.scrapeMs < 0 || o.shapes.empty())
    kCommandLine.usage();
  return o;
}

// Fields of /proc/PID/status, KiB.
struct Memory {
  long rss = 0, hwm = 0, anon = 0, file = 0, shmem = 0;
};
Memory memoryOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  Memory m;
  auto field = [](const std::string& line, const char* name, long& out) {
    if (line.starts_with(name))
      out = std::strtol(line.c_str() + std::strlen(name), nullptr, 10);
  };
  for (std::string line; std::getline(status, line);) {
    field(line, "VmRSS:", m.rss);
    field(line, "VmHWM:", m.hwm);
    field(line, "RssAnon:", m.anon);
    field(line, "RssFile:", m.file);
    field(line, "RssShmem:", m.shmem);
  }
  return m;
}

// utime + stime of a process, seconds.
double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::stringstream fields(stat.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int n = 3; fields >> f && n <= 15; ++n)
    if (n >= 14)
      ticks += std::stod(f);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

size_t openFds(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

double mib(long kib) {
  return kib / 1024.0;
}

struct Package {
  std::string name; // program name in the chain
  BuiltPackage built;
  std::string extra; // YAML lines after package:
};

struct Measurement {
  Memory ready, scraped;
  long scrapeMinRss = 0, scrapeMaxRss = 0;
  std::vector<long> rssTrace;   // VmRSS once a second while scraping
  std::vector<double> cpuTrace; // the agent's CPU seconds so far, at the same times
  double cpuWindow = 0;         // CPU seconds the agent used while scraped
  double readyMs = 0;
  size_t metricsBytes = 0;
  int scrapes = 0, scrapeErrors = 0;
  int programs = 0;
  size_t fdsReady = 0, fdsScraped = 0;
};

class Bench {
public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  void run() {
    auto dir = TempDir::create("agent-memory");
    if (!dir)
      kCommandLine.die(dir.error().message());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    fs::create_directories(dir_->path() + "/packages");
    struct {
      const char *name, *object, *entry, *next, *extra;
    } programs[] = {
        {"filter", "portfilter", "portfilter_xdp", "portfilter_xdp_next",
         "    mapArgs: [{map: portfilter_ports, entries: [{key: \"9999\", value: \"1\"}]}]\n"
         "    monitorMaps: [{map: portfilter_stats, key: \"0\", aggregator: sum}]\n"},
        {"count", "counter", "counter_xdp", "counter_xdp_next",
         "    monitorMaps: [{map: counter_stats, key: \"0\", aggregator: sum}]\n"},
        {"limit", "ratelimit", "ratelimit_xdp", "ratelimit_xdp_next",
         "    globalData: {rate_pps: \"100000\"}\n"
         "    monitorMaps: [{map: ratelimit_stats, key: \"0\", aggregator: max-rate}]\n"},
    };
    for (const auto& p : programs) {
      auto built =
          buildPackage(dir_->path() + "/packages", p.object, p.object, p.entry, "xdp", p.next);
      if (!built)
        kCommandLine.die(built.error().message());
      packages_.push_back({p.name, *built, p.extra});
    }
    for (int r = 0; r < o_.runs; ++r)
      for (const auto& shape : o_.shapes)
        results_[shape].push_back(measure(shape, r));
    print();
  }

private:
  std::string config(const std::string& shape, int& programs) const {
    programs = 0;
    if (shape == "idle")
      return "chains: []\n";
    std::string yaml = "chains:\n";
    for (int c = 0; c < o_.chains; ++c) {
      char name[32];
      std::snprintf(name, sizeof name, "chain-%02d", c);
      yaml += std::string("- name: ") + name +
              "\n  hook: xdp\n  priority: " + std::to_string(100 + c) +
              "\n  interfaces: {names: [\"/^eth[0-9]+$/\"]}\n" + "  programs:\n";
      size_t count = shape == "max" ? packages_.size() : 1 + c % packages_.size();
      for (size_t p = 0; p < count; ++p) {
        const Package& pkg = packages_[p];
        yaml += "  - name: " + pkg.name + "\n    package: {url: \"" + pkg.built.url +
                "\", sha256: \"" + pkg.built.sha256 + "\"}\n" + pkg.extra;
        ++programs;
      }
    }
    return yaml;
  }

  bool allReady(const std::string& statusPath, int interfaces) const {
    try {
      YAML::Node status = YAML::LoadFile(statusPath);
      if (!status["chains"] || status["chains"].size() != static_cast<size_t>(o_.chains))
        return false;
      for (const auto& c : status["chains"])
        if (c["phase"].as<std::string>() != "Ready" ||
            c["attachments"].size() != static_cast<size_t>(interfaces))
          return false;
      return true;
    } catch (const YAML::Exception&) {
      return false;
    }
  }

  Measurement measure(const std::string& shape, int run) {
    Measurement r;
    auto netns = TestNetns::create();
    if (!netns)
      kCommandLine.die(netns.error().message());
    for (int i = 0; i < o_.interfaces; ++i) {
      std::string eth = "eth" + std::to_string(i), peer = "p" + std::to_string(i);
      for (const auto& args : std::vector<std::vector<std::string>>{
               {"link", "add", eth, "type", "veth", "peer", "name", peer},
               {"link", "set", eth, "up"},
               {"link", "set", peer, "up"}})
        if (auto ok = netns->ip(args); !ok)
          kCommandLine.die(ok.error().message());
    }
    auto bpffs = TestBpffs::mount();
    if (!bpffs)
      kCommandLine.die(bpffs.error().message());
    std::string base = dir_->path() + "/" + shape + "-" + std::to_string(run);
    fs::create_directories(base);
    std::ofstream(base + "/node.yaml") << config(shape, r.programs);

    AgentOptions a =
        AgentOptions::standalone(base + "/node.yaml", netns->path(), bpffs->path(), base);
    a.extra = o_.agentArgs;
    auto t0 = SteadyClock::now();
    auto agent = AgentProcess::start(a, base + "/agent.log");
    if (!agent)
      kCommandLine.die(agent.error().message());
    pid_t pid = (*agent)->process().pid();
    bool ready = eventually(
        [&] {
          return shape == "idle" ? (*agent)->get("/readyz").ok()
                                 : allReady(a.stateDir + "/status.yaml", o_.interfaces);
        },
        300000);
    if (!ready)
      kCommandLine.die(shape + ": not Ready within 300 s; log:\n" + (*agent)->log());
    r.readyMs = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
    std::this_thread::sleep_for(2s);
    r.ready = memoryOf(pid);
    r.fdsReady = openFds(pid);

    // Scrapes, with VmRSS sampled every second.
    r.scrapeMinRss = r.scrapeMaxRss = r.ready.rss;
    double cpuStart = cpuSeconds(pid);
    auto end = SteadyClock::now() + std::chrono::seconds(o_.scrapeS);
    auto nextSample = SteadyClock::now() + 1s;
    while (SteadyClock::now() < end) {
      if (o_.scrapeMs > 0) {
        auto text = (*agent)->get("/metrics");
        ++r.scrapes;
        if (text)
          r.metricsBytes = text->size();
        else
          ++r.scrapeErrors;
      }
      if (SteadyClock::now() >= nextSample) {
        long rss = memoryOf(pid).rss;
        r.rssTrace.push_back(rss);
        r.cpuTrace.push_back(cpuSeconds(pid));
        r.scrapeMinRss = std::min(r.scrapeMinRss, rss);
        r.scrapeMaxRss = std::max(r.scrapeMaxRss, rss);
        nextSample += 1s;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(o_.scrapeMs > 0 ? o_.scrapeMs : 100));
    }
    r.scraped = memoryOf(pid);
    r.fdsScraped = openFds(pid);
    r.cpuWindow = cpuSeconds(pid) - cpuStart;
    std::fprintf(
        stderr,
        "run %d %-5s %3d programs: Ready after %6.0f ms, RSS %.1f MiB (HWM %.1f; anon "
        "%.1f, file %.1f, shmem %.1f); after %d scrapes (%zu bytes each, %d errors) RSS "
        "%.1f MiB (HWM %.1f), range while scraping %.1f-%.1f; open fds %zu -> %zu; CPU %.2f s\n",
        run + 1, shape.c_str(), r.programs, r.readyMs, mib(r.ready.rss), mib(r.ready.hwm),
        mib(r.ready.anon), mib(r.ready.file), mib(r.ready.shmem), r.scrapes, r.metricsBytes,
        r.scrapeErrors, mib(r.scraped.rss), mib(r.scraped.hwm), mib(r.scrapeMinRss),
        mib(r.scrapeMaxRss), r.fdsReady, r.fdsScraped, r.cpuWindow);
    if (r.rssTrace.size() > 20) {
      std::fprintf(stderr, "  VmRSS every 10 s while scraping, MiB:");
      for (size_t i = 9; i < r.rssTrace.size(); i += 10)
        std::fprintf(stderr, " %.1f", mib(r.rssTrace[i]));
      std::fprintf(stderr, "\n  agent CPU seconds per 10 s:");
      for (size_t i = 19; i < r.cpuTrace.size(); i += 10)
        std::fprintf(stderr, " %.2f", r.cpuTrace[i] - r.cpuTrace[i - 10]);
      std::fprintf(stderr, "\n");
    }
    // The chains stay attached; the namespace and the bpffs mount take them away.
    (*agent)->process().stop();
    agent->reset();
    return r;
  }

  struct Spread {
    double median, min, max;
  };
  static Spread spread(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
  }

  void print() {
    std::printf("\nagent memory: %d chains x %d interfaces (each chain on every interface), "
                "%d runs; MiB, median [min, max]\n\n",
                o_.chains, o_.interfaces, o_.runs);
    std::printf("| config | programs | Ready after | RSS at Ready | HWM at Ready | anon / file / "
                "shmem at Ready | RSS after %d s of scrapes | HWM after | RSS / idle RSS |\n",
                o_.scrapeS);
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    std::vector<double> idle;
    if (results_.contains("idle"))
      for (const auto& r : results_["idle"])
        idle.push_back(mib(r.scraped.rss));
    for (const auto& shape : o_.shapes) {
      const auto& v = results_[shape];
      auto pick = [&](auto f) {
        std::vector<double> x;
        for (const auto& r : v)
          x.push_back(f(r));
        return spread(x);
      };
      auto fmt = [](Spread s, const char* unit = "") {
        char text[64];
        std::snprintf(text, sizeof text, "%.1f%s [%.1f, %.1f]", s.median, unit, s.min, s.max);
        return std::string(text);
      };
      Spread ready = pick([](const Measurement& r) { return r.readyMs / 1000; });
      Spread rss = pick([](const Measurement& r) { return mib(r.ready.rss); });
      Spread hwm = pick([](const Measurement& r) { return mib(r.ready.hwm); });
      Spread anon = pick([](const Measurement& r) { return mib(r.ready.anon); });
      Spread file = pick([](const Measurement& r) { return mib(r.ready.file); });
      Spread shmem = pick([](const Measurement& r) { return mib(r.ready.shmem); });
      Spread rss2 = pick([](const Measurement& r) { return mib(r.scraped.rss); });
      Spread hwm2 = pick([](const Measurement& r) { return mib(r.scraped.hwm); });
      std::string ratio = "-";
      if (!idle.empty()) {
        // Run by run: each run's agent against that run's idle agent.
        std::vector<double> x;
        for (size_t i = 0; i < v.size() && i < idle.size(); ++i)
          x.push_back(mib(v[i].scraped.rss) / idle[i]);
        Spread s = spread(x);
        char text[64];
        std::snprintf(text, sizeof text, "%.2fx [%.2f, %.2f]", s.median, s.min, s.max);
        ratio = text;
      }
      std::printf("| %s | %d | %s | **%s** | %s | %.1f / %.1f / %.1f | **%s** | %s | %s |\n",
                  shape.c_str(), v.front().programs, fmt(ready, " s").c_str(), fmt(rss).c_str(),
                  fmt(hwm).c_str(), anon.median, file.median, shmem.median, fmt(rss2).c_str(),
                  fmt(hwm2).c_str(), ratio.c_str());
    }
    std::printf("\nRSS range while scraping (sampled every second), per run:\n");
    for (const auto& shape : o_.shapes) {
      std::printf("  %-5s", shape.c_str());
      for (const auto& r : results_[shape])
        std::printf("  %.1f-%.1f", mib(r.scrapeMinRss), mib(r.scrapeMaxRss));
      std::printf("  (/metrics %zu bytes)\n", results_[shape].back().metricsBytes);
    }
  }

  Options o_;
  std::unique_ptr<TempDir> dir_;
  std::vector<Package> packages_;
  std::map<std::string, std::vector<Measurement>> results_;
};

} // namespace

int main(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  return kCommandLine.runAsRoot("network namespaces, bpffs, BPF",
                                [&] { Bench(std::move(o)).run(); });
}
