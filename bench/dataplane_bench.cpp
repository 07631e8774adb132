// Chain overhead per hop (DESIGN.md section 9): T(N), the time BPF_PROG_TEST_RUN takes to run
// a root and N chained programs on one 64-byte frame, for N = 0..max, for
//   bpfchain    our root + N `counter` instances, built by the chain manager;
//   l3af        the same root + N programs written to L3AF's ABI (bpf/l3af_compat.bpf.c),
//               i.e. L3AF's xdp-root chain;
//   monolithic  one program doing the work of N counters (bench/bpf/monolithic.bpf.c);
//   empty       our root + N programs that do nothing but chain on (root.bpf.c's own entry),
//               the cost of a hop alone.
// Per-hop overhead is (T(N) - T(0)) / N. Each sample is the kernel's own `duration` of one test
// run of `repeat` packets: the mean time per packet with preemption off, in whole ns. (Wall
// time around the syscall is useless here: on this VM it moves in 4 ms scheduler ticks.) The
// whole-ns rounding is why per-hop figures are read at large N, where it divides by N. The
// table gives the median of `runs` samples and their interquartile range.
//   bpfchain-bench-dataplane [--max-hops N] [--runs N] [--repeat N]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "command_line.h"
#include "dataplane/chain.h"
#include "harness/bpffs.h"
#include "monolithic.skel.h"

using namespace bpfchain;
using namespace bpfchain::dataplane;

namespace {

const std::string kBpfDir = BPFCHAIN_BPF_DIR;
const bench::CommandLine kCommandLine{
    "bpfchain-bench-dataplane",
    "Chain overhead per hop: bpfchain, l3af, monolithic and empty chains."};

struct Options {
  int maxHops = 10;
  int runs = 31;
  unsigned repeat = 1000000;
};

struct Sample {
  double median = 0, p25 = 0, p75 = 0;
};

Sample summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::lround(q * static_cast<double>(v.size() - 1))]; };
  return {at(0.5), at(0.25), at(0.75)};
}

// Nanoseconds per packet for one program fd, `runs` samples of `repeat` packets each.
Sample measure(int progFd, const Options& options) {
  std::array<unsigned char, 64> frame{};
  frame[12] = 0x08; // IPv4 ethertype; contents do not matter to these programs
  std::vector<double> samples;
  for (int run = 0; run < options.runs; ++run) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = frame.size(),
                .repeat = static_cast<int>(options.repeat));
    if (bpf_prog_test_run_opts(progFd, &opts) != 0)
      kCommandLine.die(std::string("test run: ") + std::strerror(errno));
    samples.push_back(opts.duration);
  }
  return summarize(samples);
}

std::vector<Sample> chainSeries(const std::string& dir, const ProgramSpec& stage,
                                const Options& options) {
  auto chain = Chain::open(dir, Hook::Xdp);
  if (!chain)
    kCommandLine.die(chain.error().message());
  std::vector<Sample> series;
  for (int n = 0; n <= options.maxHops; ++n) {
    std::vector<ProgramSpec> specs;
    for (int i = 0; i < n; ++i) {
      specs.push_back(stage);
      specs.back().id = "p" + std::to_string(i);
    }
    if (auto r = chain->apply(specs); !r)
      kCommandLine.die(r.error().message());
    series.push_back(measure(chain->rootFd(), options));
  }
  (void)chain->destroy();
  return series;
}

std::vector<Sample> monolithicSeries(const Options& options) {
  std::vector<Sample> series;
  for (int n = 0; n <= options.maxHops; ++n) {
    monolithic* skel = monolithic::open();
    if (!skel)
      kCommandLine.die(std::string("open monolithic: ") + std::strerror(errno));
    skel->rodata->stages = n;
    if (monolithic::load(skel) != 0) {
      int error = errno;
      monolithic::destroy(skel);
      kCommandLine.die(std::string("load monolithic: ") + std::strerror(error));
    }
    series.push_back(measure(bpf_program__fd(skel->progs.monolithic_xdp), options));
    monolithic::destroy(skel);
  }
  return series;
}

double perHop(const std::vector<Sample>& s, int n) {
  return (s[n].median - s[0].median) / n;
}

// The four series in a private bpffs (the benchmark's pins never meet anyone else's), then the
// tables.
int runBenchmark(const Options& options) {
  auto mount = testing::TestBpffs::mount();
  if (!mount)
    kCommandLine.die(mount.error().message());
  const std::string bpffs = mount->path();
  ProgramSpec counter{.id = "",
                      .objectPath = kBpfDir + "/counter.bpf.o",
                      .entry = "counter_xdp",
                      .nextMap = "counter_xdp_next"};
  ProgramSpec l3af{.id = "",
                   .objectPath = kBpfDir + "/l3af_compat.bpf.o",
                   .entry = "xdp_l3af",
                   .nextMap = "xdp_l3af_next_prog"};
  auto ours = chainSeries(bpffs + "/bpfchain", counter, options);
  auto theirs = chainSeries(bpffs + "/l3af", l3af, options);
  ProgramSpec empty{.id = "",
                    .objectPath = kBpfDir + "/root.bpf.o",
                    .entry = "root_xdp",
                    .nextMap = "root_xdp_next"};
  auto hops = chainSeries(bpffs + "/empty", empty, options);
  auto mono = monolithicSeries(options);

  std::printf("ns per packet, median [p25, p75] of %d runs x %u packets\n\n", options.runs,
              options.repeat);
  std::printf("| N | bpfchain | l3af xdp-root | monolithic | empty |\n|---|---|---|---|---|\n");
  for (int n = 0; n <= options.maxHops; ++n)
    std::printf(
        "| %d | %.0f [%.0f, %.0f] | %.0f [%.0f, %.0f] | %.0f [%.0f, %.0f] | %.0f [%.0f, %.0f] |\n",
        n, ours[n].median, ours[n].p25, ours[n].p75, theirs[n].median, theirs[n].p25, theirs[n].p75,
        mono[n].median, mono[n].p25, mono[n].p75, hops[n].median, hops[n].p25, hops[n].p75);
  std::printf("\nper-hop overhead (T(N) - T(0)) / N, ns\n\n");
  std::printf("| N | bpfchain | l3af xdp-root | monolithic | bpfchain - monolithic | empty |\n"
              "|---|---|---|---|---|---|\n");
  for (int n = 1; n <= options.maxHops; ++n)
    std::printf("| %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", n, perHop(ours, n),
                perHop(theirs, n), perHop(mono, n), perHop(ours, n) - perHop(mono, n),
                perHop(hops, n));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  Options options;
  kCommandLine.parse(argc, argv, [&](CLI::App& app) {
    app.add_option("--max-hops", options.maxHops, "chains of 0..N hops (1..30)")
        ->capture_default_str();
    app.add_option("--runs", options.runs, "samples per point (at least 3)")->capture_default_str();
    app.add_option("--repeat", options.repeat, "packets per sample (at least 1000)")
        ->capture_default_str();
  });
  options.maxHops = std::clamp(options.maxHops, 1, 30);
  options.runs = std::max(options.runs, 3);
  options.repeat = std::max(options.repeat, 1000u);

  return kCommandLine.run([&] { return runBenchmark(options); });
}
