// Upgrades under a flood (issue #17): a chain `ratelimit -> counter` whose rate limiter is
// upgraded again and again between two versions (they differ in globalData, so each upgrade
// loads a new instance) while one thread floods the chain's root with one source's packets by
// BPF_PROG_TEST_RUN, so every verdict is counted. The rate limiter is configured (mapArgs) to
// --rate packets per second with a bucket of --burst: over T seconds at most
// burst + ceil(rate * T) + 1 packets may pass. Reported per mode, over --runs runs of
// --upgrades upgrades:
//   excess/upgrade  packets that passed beyond that bound, divided by the upgrades (target 0);
//   apply           Chain::apply of one upgrade under the flood (load, verify, map arguments,
//                   one slot update), median and spread over every upgrade;
//   lost            packets the rate limiter passed that the counter behind it did not see.
// Modes: carry (the default: the new version runs on the running version's maps) and fresh
// (ProgramSpec::freshState: every upgrade starts with empty maps, which is what an upgrade did
// before maps were carried).
//   bpfchain-bench-upgrades [--upgrades N] [--runs N] [--rate PPS] [--burst N]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "command_line.h"
#include "dataplane/chain.h"
#include "harness/bpffs.h"
#include "harness/packet_builder.h"
#include "harness/test_run_flood.h"
#include "statistics.h"

using namespace bpfchain;
using namespace bpfchain::dataplane;

namespace {

const std::string kBpfDir = BPFCHAIN_BPF_DIR;

struct Options {
  int upgrades = 20;
  int runs = 5;
  uint64_t rate = 1000;
  uint64_t burst = 100;
};

struct RunResult {
  uint64_t packets = 0, passed = 0, allowed = 0, counted = 0, errors = 0;
  double seconds = 0;
  std::vector<double> applyMs;
};

ProgramSpec limiter(const Options& o, int version, bool fresh) {
  ProgramSpec spec{.id = "rl",
                   .objectPath = kBpfDir + "/ratelimit.bpf.o",
                   .entry = "ratelimit_xdp",
                   .nextMap = "ratelimit_xdp_next",
                   .globalData = {{"burst", std::to_string(version)}}};
  spec.mapArgs.push_back(
      {.map = "ratelimit_config",
       .mode = bpfchain::btf::MapArgMode::Replace,
       .entries = {{bpfchain::btf::ArgValue::text("0"),
                    *bpfchain::btf::parseArgValue("{rate_pps: " + std::to_string(o.rate) +
                                                      ", burst: " + std::to_string(o.burst) + "}",
                                                  "value")}}});
  spec.freshState = fresh;
  return spec;
}

ProgramSpec counter() {
  return {.id = "after",
          .objectPath = kBpfDir + "/counter.bpf.o",
          .entry = "counter_xdp",
          .nextMap = "counter_xdp_next"};
}

// counter_value.packets summed over CPUs.
uint64_t counted(const Chain& chain) {
  auto fd = chain.openMap("after", "counter_stats");
  if (!fd)
    return 0;
  std::vector<uint64_t> values(2 * static_cast<size_t>(libbpf_num_possible_cpus()));
  uint32_t key = 0;
  if (bpf_map_lookup_elem(fd->get(), &key, values.data()) != 0)
    return 0;
  uint64_t total = 0;
  for (size_t i = 0; i < values.size(); i += 2)
    total += values[i];
  return total;
}

RunResult runOnce(const bench::CommandLine& cl, const Options& o, bool fresh, int run) {
  auto bpffs = testing::TestBpffs::mount();
  if (!bpffs)
    cl.die("mount bpffs: " + bpffs.error().message());
  auto chain =
      Chain::open(bpffs->path() + "/bpfchain/1/" + std::to_string(run) + "/xdp", Hook::Xdp);
  if (!chain)
    cl.die(chain.error().message());
  std::vector<ProgramSpec> specs{limiter(o, 1, fresh), counter()};
  if (auto r = chain->apply(specs); !r)
    cl.die(r.error().message());
  testing::TestRunFlood flood(chain->rootFd(), testing::PacketBuilder()
                                                   .eth()
                                                   .ipv4("10.9.0.1", "10.9.0.2")
                                                   .udp(4000, 5000)
                                                   .payload(18)
                                                   .build());
  RunResult result;
  flood.start();
  // Upgrades are spread over the run, so that the rate, not the upgrades, dominates the time.
  auto spacing = std::chrono::milliseconds(50);
  for (int u = 1; u <= o.upgrades; ++u) {
    std::this_thread::sleep_for(spacing);
    specs[0] = limiter(o, u % 2 + 1, fresh);
    auto start = std::chrono::steady_clock::now();
    auto r = chain->apply(specs);
    auto end = std::chrono::steady_clock::now();
    if (!r)
      cl.die("upgrade " + std::to_string(u) + ": " + r.error().message());
    result.applyMs.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::this_thread::sleep_for(spacing);
  result.seconds = flood.stop();
  result.passed = flood.passed();
  result.packets = flood.passed() + flood.dropped() + flood.errors();
  result.errors = flood.errors();
  result.allowed = o.burst + static_cast<uint64_t>(std::ceil(result.seconds * o.rate)) + 1;
  result.counted = counted(*chain);
  (void)chain->destroy();
  return result;
}

} // namespace

int main(int argc, char** argv) {
  bench::CommandLine cl("bpfchain-bench-upgrades",
                        "Upgrades of a rate limiter under a BPF_PROG_TEST_RUN flood (root).");
  Options o;
  cl.parse(argc, argv, [&](CLI::App& app) {
    app.add_option("--upgrades", o.upgrades, "upgrades per run")
        ->check(cli::integerIn(1, 1000000))
        ->capture_default_str();
    app.add_option("--runs", o.runs, "runs per mode")
        ->check(cli::integerIn(1, 1000000))
        ->capture_default_str();
    app.add_option("--rate", o.rate, "the limiter's rate, packets/s")
        ->check(cli::integerIn(1, 1000000000))
        ->capture_default_str();
    app.add_option("--burst", o.burst, "the limiter's burst, packets")
        ->check(cli::integerIn(1, 1000000000))
        ->capture_default_str();
  });

  return cl.run([&] {
    std::printf("%d runs x %d upgrades of ratelimit -> counter under a BPF_PROG_TEST_RUN flood; "
                "rate %llu pps, burst %llu\n\n",
                o.runs, o.upgrades, static_cast<unsigned long long>(o.rate),
                static_cast<unsigned long long>(o.burst));
    std::printf("%-6s %12s %16s %22s %26s %6s\n", "mode", "packets/s", "passed/allowed",
                "excess/upgrade median", "apply ms median [p25,p75] max", "lost");
    for (bool fresh : {false, true}) {
      std::vector<double> excess, applyMs, rates;
      uint64_t passed = 0, allowed = 0, lost = 0, errors = 0;
      for (int run = 0; run < o.runs; ++run) {
        RunResult r = runOnce(cl, o, fresh, run);
        excess.push_back(
            r.passed > r.allowed ? static_cast<double>(r.passed - r.allowed) / o.upgrades : 0.0);
        applyMs.insert(applyMs.end(), r.applyMs.begin(), r.applyMs.end());
        rates.push_back(static_cast<double>(r.packets) / r.seconds);
        passed += r.passed;
        allowed += r.allowed;
        lost += r.passed - std::min(r.passed, r.counted);
        errors += r.errors;
      }
      if (errors)
        cl.die(std::to_string(errors) + " test runs failed");
      char ratio[64], latency[96];
      std::snprintf(ratio, sizeof ratio, "%llu/%llu", static_cast<unsigned long long>(passed),
                    static_cast<unsigned long long>(allowed));
      std::snprintf(latency, sizeof latency, "%.1f [%.1f,%.1f] %.1f",
                    bench::percentile(applyMs, 0.5), bench::percentile(applyMs, 0.25),
                    bench::percentile(applyMs, 0.75), bench::percentile(applyMs, 1.0));
      std::printf("%-6s %12.0f %16s %22.1f %26s %6llu\n", fresh ? "fresh" : "carry",
                  bench::percentile(rates, 0.5), ratio, bench::percentile(excess, 0.5), latency,
                  static_cast<unsigned long long>(lost));
    }
    return 0;
  });
}
