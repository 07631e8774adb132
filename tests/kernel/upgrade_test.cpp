// Upgrades keep what a program knows (issue #17): a rate limiter upgraded 20 times between two
// versions, and moved, under a continuous flood, passes exactly what its configured rate
// allows; its maps are the same maps (same ids, same values) before and after; a version
// whose map layout changed starts that map empty and says so; freshState starts empty on
// purpose, with the configuration written before the new version sees a packet; and a
// SIGKILLed owner's upgraded chain is adopted with the same programs and maps.
//
// The flood is BPF_PROG_TEST_RUN on the chain's root from one thread: every packet's verdict is
// known, so the counts are exact (no veth ring, no socket buffer in between).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <signal.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "dataplane/chain.h"
#include "harness/bpffs.h"
#include "harness/packet_builder.h"
#include "harness/test_run_flood.h"

namespace bpfchain::dataplane {
namespace {

using testing::PacketBuilder;
using testing::TestBpffs;
using testing::TestRunFlood;

// One IPv4 packet from one source: one bucket of the rate limiter.
testing::Bytes floodFrame() {
  return PacketBuilder().eth().ipv4("10.9.0.1", "10.9.0.2").udp(4000, 5000).payload(18).build();
}

const std::string kBpfDir = BPFCHAIN_BPF_DIR;
constexpr uint64_t kRatePps = 20;
constexpr uint64_t kBurst = 300;

// The rate limiter; `version` is a global it does not use (the configuration map overrides
// `burst`), so two versions differ in their load (a new instance) and not in behaviour.
ProgramSpec ratelimitSpec(int version, const std::string& object = "ratelimit") {
  ProgramSpec spec{.id = "rl",
                   .objectPath = kBpfDir + "/" + object + ".bpf.o",
                   .entry = "ratelimit_xdp",
                   .nextMap = "ratelimit_xdp_next",
                   .globalData = {{"burst", std::to_string(version)}}};
  spec.mapArgs.push_back(
      {.map = "ratelimit_config",
       .mode = btf::MapArgMode::Replace,
       .entries = {{btf::ArgValue::text("0"),
                    *btf::parseArgValue("{rate_pps: " + std::to_string(kRatePps) +
                                            ", burst: " + std::to_string(kBurst) + "}",
                                        "value")}}});
  return spec;
}

ProgramSpec counterSpec(const std::string& id) {
  return {.id = id,
          .objectPath = kBpfDir + "/counter.bpf.o",
          .entry = "counter_xdp",
          .nextMap = "counter_xdp_next"};
}

uint32_t mapId(const Chain& chain, const std::string& program, const std::string& map) {
  auto fd = chain.openMap(program, map);
  if (!fd) {
    ADD_FAILURE() << fd.error().message();
    return 0;
  }
  bpf_map_info info{};
  uint32_t len = sizeof info;
  EXPECT_EQ(bpf_obj_get_info_by_fd(fd->get(), &info, &len), 0);
  return info.id;
}

// Sum over CPUs of the u64 at `offset` in the value of `key` of a per-CPU map.
uint64_t perCpuSum(const Chain& chain, const std::string& program, const std::string& map,
                   uint32_t key, size_t valueSize, size_t offset = 0) {
  auto fd = chain.openMap(program, map);
  if (!fd) {
    ADD_FAILURE() << fd.error().message();
    return 0;
  }
  int cpus = libbpf_num_possible_cpus();
  size_t stride = (valueSize + 7) / 8 * 8;
  std::vector<unsigned char> values(stride * cpus);
  if (bpf_map_lookup_elem(fd->get(), &key, values.data()) != 0) {
    ADD_FAILURE() << map << ": " << std::strerror(errno);
    return 0;
  }
  uint64_t total = 0;
  for (int cpu = 0; cpu < cpus; ++cpu) {
    uint64_t v;
    std::memcpy(&v, values.data() + cpu * stride + offset, sizeof v);
    total += v;
  }
  return total;
}

// Packets the downstream counter saw (counter_value.packets).
uint64_t counted(const Chain& chain, const std::string& id) {
  return perCpuSum(chain, id, "counter_stats", 0, 16);
}

// Packets that entered the rate limiter (chain.h slot 0 of ratelimit_stats).
uint64_t rateLimiterSeen(const Chain& chain) {
  return perCpuSum(chain, "rl", "ratelimit_stats", 0, 8);
}

// Every (key, value) of the rate limiter's bucket map, as raw bytes.
std::vector<std::pair<std::string, std::string>> buckets(const Chain& chain) {
  std::vector<std::pair<std::string, std::string>> out;
  auto fd = chain.openMap("rl", "ratelimit_buckets");
  if (!fd) {
    ADD_FAILURE() << fd.error().message();
    return out;
  }
  bpf_map_info info{};
  uint32_t len = sizeof info;
  EXPECT_EQ(bpf_obj_get_info_by_fd(fd->get(), &info, &len), 0);
  std::string key(info.key_size, '\0'), next(info.key_size, '\0'), value(info.value_size, '\0');
  const void* previous = nullptr;
  while (bpf_map_get_next_key(fd->get(), previous, next.data()) == 0) {
    key = next;
    EXPECT_EQ(bpf_map_lookup_elem(fd->get(), key.data(), value.data()), 0);
    out.emplace_back(key, value);
    previous = key.data();
  }
  return out;
}

class Upgrades : public ::testing::Test {
protected:
  void SetUp() override {
    auto fs = TestBpffs::mount();
    ASSERT_TRUE(fs.ok()) << fs.error().message();
    bpffs_ = std::make_unique<TestBpffs>(std::move(*fs));
  }
  std::string chainDir() const { return bpffs_->path() + "/bpfchain/1/7/xdp"; }
  size_t instanceDirs() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e :
         std::filesystem::directory_iterator(chainDir() + "/programs"))
      ++n;
    return n;
  }
  std::unique_ptr<TestBpffs> bpffs_;
};

// The GCRA bound of ratelimit.h: over `seconds`, a bucket that starts full passes at most its
// burst and one packet per 1/rate seconds (the +1: the packet that finds the boundary).
uint64_t allowedAtMost(double seconds) {
  return kBurst + static_cast<uint64_t>(std::ceil(seconds * kRatePps)) + 1;
}

TEST_F(Upgrades, ARateLimiterUpgradedTwentyTimesUnderAFloodPassesOnlyWhatItsRateAllows) {
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  // `other` sits before or after the rate limiter: moving it moves the rate limiter too.
  std::vector<ProgramSpec> specs{ratelimitSpec(1), counterSpec("other"), counterSpec("after")};
  ASSERT_TRUE(chain->apply(specs).ok());
  const uint32_t buckets0 = mapId(*chain, "rl", "ratelimit_buckets");
  const uint32_t config0 = mapId(*chain, "rl", "ratelimit_config");
  const uint32_t stats0 = mapId(*chain, "rl", "ratelimit_stats");
  const uint32_t rodata0 = mapId(*chain, "rl", "ratelimi.rodata");

  TestRunFlood flood(chain->rootFd(), floodFrame());
  flood.start();
  while (flood.dropped() == 0) // the burst is spent: from now on only the rate passes
    std::this_thread::yield();
  size_t loads = 0;
  uint64_t lastSeen = 0;
  // 20 upgrades between the two versions; after every fourth, a move alone (the rate limiter
  // goes behind `other` or back: a clone of the same version); the tenth both at once.
  struct Step {
    bool upgrade;
    bool move;
  };
  std::vector<Step> steps;
  for (int upgrade = 1; upgrade <= 20; ++upgrade) {
    steps.push_back({true, upgrade == 10});
    if (upgrade % 4 == 0)
      steps.push_back({false, true});
  }
  int version = 1;
  bool behind = false;
  for (size_t round = 0; round < steps.size(); ++round) {
    if (steps[round].upgrade)
      version = 3 - version;
    if (steps[round].move)
      behind = !behind;
    std::vector<ProgramSpec> desired{ratelimitSpec(version), counterSpec("other"),
                                     counterSpec("after")};
    if (behind)
      std::swap(desired[0], desired[1]);
    // Every fifth round the flood holds during the upgrade, so that the maps' values can be
    // compared exactly; the other rounds upgrade under the flood.
    bool quiet = round % 5 == 4;
    std::vector<std::pair<std::string, std::string>> before;
    uint64_t seenBefore = 0;
    if (quiet) {
      flood.hold();
      before = buckets(*chain);
      seenBefore = rateLimiterSeen(*chain);
    }
    auto report = chain->apply(desired);
    ASSERT_TRUE(report.ok()) << "round " << round << ": " << report.error().message();
    loads += report->loaded;
    EXPECT_TRUE(report->uncarried.empty())
        << "round " << round << ": " << report->uncarried.front().map << " "
        << report->uncarried.front().reason;
    // The same maps, not copies: the same kernel ids.
    EXPECT_EQ(mapId(*chain, "rl", "ratelimit_buckets"), buckets0) << "round " << round;
    EXPECT_EQ(mapId(*chain, "rl", "ratelimit_config"), config0) << "round " << round;
    EXPECT_EQ(mapId(*chain, "rl", "ratelimit_stats"), stats0) << "round " << round;
    if (quiet) {
      EXPECT_EQ(buckets(*chain), before) << "round " << round;
      EXPECT_EQ(rateLimiterSeen(*chain), seenBefore) << "round " << round;
      EXPECT_EQ(before.size(), 1u) << "round " << round;
      flood.resume();
    }
    uint64_t seen = rateLimiterSeen(*chain);
    EXPECT_GE(seen, lastSeen) << "a counter went backwards in round " << round;
    lastSeen = seen;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // the last version under load
  double seconds = flood.stop();

  EXPECT_GE(loads, steps.size()); // a new rate limiter instance in every step
  EXPECT_EQ(flood.errors(), 0u);
  uint64_t passed = flood.passed();
  uint64_t total = flood.passed() + flood.dropped();
  std::cout << "packets " << total << " in " << seconds << " s, passed " << passed
            << ", allowed at most " << allowedAtMost(seconds) << ", instances loaded " << loads
            << "\n";
  EXPECT_GE(passed, kBurst);
  EXPECT_LE(passed, allowedAtMost(seconds)) << "packets passed beyond the configured rate";
  EXPECT_EQ(counted(*chain, "after"), passed) << "the downstream counter missed packets";
  // `other` ran behind the rate limiter part of the time and before it the rest.
  EXPECT_GE(counted(*chain, "other"), passed);
  EXPECT_LE(counted(*chain, "other"), total);
  EXPECT_EQ(rateLimiterSeen(*chain), total);
  // .rodata (libbpf names it after the object) is the version's own: globalData must take
  // effect, so every version has a new one.
  EXPECT_NE(mapId(*chain, "rl", "ratelimi.rodata"), rodata0);
  // Only the running instances stay pinned; the carried maps outlived their first pins.
  EXPECT_EQ(instanceDirs(), 3u);
}

TEST_F(Upgrades, AMapWhoseLayoutChangedStartsEmptyAndNothingElseIsAffected) {
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  std::vector<ProgramSpec> specs{ratelimitSpec(1), counterSpec("after")};
  ASSERT_TRUE(chain->apply(specs).ok());
  const uint32_t buckets0 = mapId(*chain, "rl", "ratelimit_buckets");
  const uint32_t config0 = mapId(*chain, "rl", "ratelimit_config");
  const uint32_t stats0 = mapId(*chain, "rl", "ratelimit_stats");
  const uint32_t after0 = mapId(*chain, "after", "counter_stats");
  const uint32_t afterProgram = chain->programs().back().programId;

  TestRunFlood flood(chain->rootFd(), floodFrame());
  flood.start();
  while (flood.dropped() == 0)
    std::this_thread::yield();
  flood.hold();
  uint64_t seenBefore = rateLimiterSeen(*chain);
  flood.resume();

  // ratelimit_wide: the same program with a 16-byte bucket value.
  std::vector<ProgramSpec> wide{ratelimitSpec(1, "ratelimit_wide"), counterSpec("after")};
  auto report = chain->apply(wide);
  ASSERT_TRUE(report.ok()) << report.error().message();
  double seconds = flood.stop();

  std::vector<UncarriedState> expected{{"rl", "ratelimit_buckets", "value size 8 -> 16"}};
  EXPECT_EQ(report->uncarried, expected);
  EXPECT_NE(mapId(*chain, "rl", "ratelimit_buckets"), buckets0);
  EXPECT_EQ(mapId(*chain, "rl", "ratelimit_config"), config0);
  EXPECT_EQ(mapId(*chain, "rl", "ratelimit_stats"), stats0);
  EXPECT_GE(rateLimiterSeen(*chain), seenBefore);
  // The counter behind it was not touched: same program, same map, every passed packet.
  EXPECT_EQ(chain->programs().back().programId, afterProgram);
  EXPECT_EQ(mapId(*chain, "after", "counter_stats"), after0);
  EXPECT_EQ(flood.errors(), 0u);
  EXPECT_EQ(counted(*chain, "after"), flood.passed());
  // The empty bucket map gave the source one more burst, and no more than that.
  EXPECT_LE(flood.passed(), allowedAtMost(seconds) + kBurst);
}

TEST_F(Upgrades, FreshStateStartsEmptyButConfiguredBeforeTheFirstPacket) {
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  // Unconfigured, this rate limiter would pass everything (rate_pps 0: no limit): a version
  // that saw a packet before its configuration map was written would pass far more than the
  // configuration allows.
  auto spec = [](int version) {
    ProgramSpec s = ratelimitSpec(version);
    s.globalData["rate_pps"] = "0";
    s.freshState = true;
    return s;
  };
  std::vector<ProgramSpec> specs{spec(1), counterSpec("after")};
  ASSERT_TRUE(chain->apply(specs).ok());
  TestRunFlood flood(chain->rootFd(), floodFrame());
  flood.start();
  constexpr int kUpgrades = 5;
  // Each version runs until it dropped 1,000 packets, i.e. well past its burst (a version
  // drops only once its bucket is empty; the flood is one thread, so at most one packet of
  // the previous version is in flight when apply() returns).
  uint64_t mark = 0;
  for (int round = 0; round <= kUpgrades; ++round) {
    while (flood.dropped() < mark + 1000)
      std::this_thread::yield();
    if (round == kUpgrades)
      break;
    uint32_t buckets = mapId(*chain, "rl", "ratelimit_buckets");
    std::vector<ProgramSpec> next{spec(round % 2 + 2), counterSpec("after")};
    auto report = chain->apply(next);
    ASSERT_TRUE(report.ok()) << report.error().message();
    mark = flood.dropped();
    EXPECT_TRUE(report->uncarried.empty()) << "a fresh start is asked for, not reported";
    EXPECT_NE(mapId(*chain, "rl", "ratelimit_buckets"), buckets) << "round " << round;
  }
  double seconds = flood.stop();
  EXPECT_EQ(flood.errors(), 0u);
  EXPECT_EQ(counted(*chain, "after"), flood.passed());
  // Each fresh version gives one more burst, and nothing passes unconfigured.
  EXPECT_GE(flood.passed(), (kUpgrades + 1) * kBurst);
  EXPECT_LE(flood.passed(), allowedAtMost(seconds) + kUpgrades * kBurst);
}

TEST_F(Upgrades, FreshMapsNamesTheMapsThatStartEmpty) {
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  std::vector<ProgramSpec> specs{ratelimitSpec(1)};
  ASSERT_TRUE(chain->apply(specs).ok());
  uint32_t buckets = mapId(*chain, "rl", "ratelimit_buckets");
  uint32_t config = mapId(*chain, "rl", "ratelimit_config");
  specs[0] = ratelimitSpec(2);
  specs[0].freshMaps = {"ratelimit_buckets"};
  ASSERT_TRUE(chain->apply(specs).ok());
  EXPECT_NE(mapId(*chain, "rl", "ratelimit_buckets"), buckets);
  EXPECT_EQ(mapId(*chain, "rl", "ratelimit_config"), config);

  specs[0] = ratelimitSpec(1);
  specs[0].freshMaps = {"no_such_map"};
  auto refused = chain->apply(specs);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("freshMaps: map \"no_such_map\": no such map"),
            std::string::npos)
      << refused.error().message();
}

TEST_F(Upgrades, AProgramThatPinsItsMapsByNameKeepsThemWhenItMoves) {
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  // L3AF's programs say LIBBPF_PIN_BY_NAME: libbpf pins those maps itself, in the new
  // instance's directory, on top of the map it reuses.
  ProgramSpec l3af{.id = "l3af",
                   .objectPath = kBpfDir + "/l3af_compat.bpf.o",
                   .entry = "xdp_l3af",
                   .nextMap = "xdp_l3af_next_prog"};
  std::vector<ProgramSpec> specs{l3af, counterSpec("after")};
  ASSERT_TRUE(chain->apply(specs).ok());
  const uint32_t count = mapId(*chain, "l3af", "xdp_l3af_count");
  for (int move = 0; move < 3; ++move) {
    std::swap(specs[0], specs[1]);
    auto report = chain->apply(specs);
    ASSERT_TRUE(report.ok()) << report.error().message();
    EXPECT_EQ(mapId(*chain, "l3af", "xdp_l3af_count"), count) << "move " << move;
  }
  EXPECT_EQ(instanceDirs(), 2u);
}

// versioned.bpf.c: `version` in .rodata, a packet count in .bss, `versioned_mark` in .data.
ProgramSpec versionedSpec(unsigned version, std::map<std::string, std::string> more = {}) {
  more["version"] = std::to_string(version);
  return {.id = "v",
          .objectPath = kBpfDir + "/versioned.bpf.o",
          .entry = "versioned_xdp",
          .nextMap = "versioned_xdp_next",
          .globalData = std::move(more)};
}

uint64_t bssPackets(const Chain& chain) {
  auto fd = chain.openMap("v", "versione.bss"); // libbpf names it after the object
  uint32_t key = 0;
  uint64_t value = 0;
  EXPECT_TRUE(fd.ok() && bpf_map_lookup_elem(fd->get(), &key, &value) == 0);
  return value;
}

TEST_F(Upgrades, BssAndDataCarryUnlessGlobalDataSetsThem) {
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  std::vector<ProgramSpec> specs{versionedSpec(1)};
  ASSERT_TRUE(chain->apply(specs).ok());
  const uint32_t bss = mapId(*chain, "v", "versione.bss");
  const uint32_t data = mapId(*chain, "v", "versione.data");
  const uint32_t rodata = mapId(*chain, "v", "versione.rodata");
  auto send = [&](int packets) {
    TestRunFlood flood(chain->rootFd(), floodFrame());
    flood.start();
    while (flood.passed() < static_cast<uint64_t>(packets))
      std::this_thread::yield();
    flood.stop();
    return flood.passed();
  };
  uint64_t sent = send(10);
  ASSERT_EQ(bssPackets(*chain), sent);

  // A new `version` (.rodata): .rodata is new, .bss and .data are the running version's.
  specs[0] = versionedSpec(2);
  auto report = chain->apply(specs);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_TRUE(report->uncarried.empty());
  EXPECT_NE(mapId(*chain, "v", "versione.rodata"), rodata);
  EXPECT_EQ(mapId(*chain, "v", "versione.bss"), bss);
  EXPECT_EQ(mapId(*chain, "v", "versione.data"), data);
  EXPECT_EQ(bssPackets(*chain), sent);
  sent += send(5);
  EXPECT_EQ(bssPackets(*chain), sent);

  // globalData sets a .data variable: the new value must take effect, so .data starts anew
  // (from the object's initial values and globalData), while .bss still carries.
  specs[0] = versionedSpec(3, {{"versioned_mark", "9"}});
  report = chain->apply(specs);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_TRUE(report->uncarried.empty()) << "a section globalData sets is not a surprise";
  EXPECT_NE(mapId(*chain, "v", "versione.data"), data);
  auto dataFd = chain->openMap("v", "versione.data");
  ASSERT_TRUE(dataFd.ok()) << dataFd.error().message();
  uint32_t key = 0, mark = 0;
  ASSERT_EQ(bpf_map_lookup_elem(dataFd->get(), &key, &mark), 0);
  EXPECT_EQ(mark, 9u);
  EXPECT_EQ(mapId(*chain, "v", "versione.bss"), bss);
  EXPECT_EQ(bssPackets(*chain), sent);
}

TEST_F(Upgrades, ASigkilledOwnersUpgradedChainIsAdoptedWithTheSameProgramsAndMaps) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The owner: loads, upgrades (carrying the maps), reports ids, waits to be killed.
    auto chain = Chain::open(chainDir(), Hook::Xdp);
    if (!chain)
      ::_exit(1);
    std::vector<ProgramSpec> v1{ratelimitSpec(1), counterSpec("after")};
    std::vector<ProgramSpec> v2{ratelimitSpec(2), counterSpec("after")};
    if (!chain->apply(v1) || !chain->apply(v2))
      ::_exit(1);
    uint32_t ids[3] = {chain->programs()[0].programId, mapId(*chain, "rl", "ratelimit_buckets"),
                       mapId(*chain, "rl", "ratelimit_config")};
    (void)!::write(ready[1], ids, sizeof ids);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  uint32_t owner[3] = {};
  ASSERT_EQ(::read(ready[0], owner, sizeof owner), static_cast<ssize_t>(sizeof owner));
  ::close(ready[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);

  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  ASSERT_EQ(chain->programs().size(), 2u);
  EXPECT_EQ(chain->programs()[0].programId, owner[0]) << "the new owner reloaded";
  EXPECT_EQ(mapId(*chain, "rl", "ratelimit_buckets"), owner[1]);
  EXPECT_EQ(mapId(*chain, "rl", "ratelimit_config"), owner[2]);
  EXPECT_EQ(instanceDirs(), 2u) << "the first version's pins are gone";
  // And the adopted chain upgrades on, carrying the same maps.
  std::vector<ProgramSpec> v3{ratelimitSpec(3), counterSpec("after")};
  auto report = chain->apply(v3);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_NE(chain->programs()[0].programId, owner[0]);
  EXPECT_EQ(mapId(*chain, "rl", "ratelimit_buckets"), owner[1]);
  EXPECT_EQ(mapId(*chain, "rl", "ratelimit_config"), owner[2]);
}

} // namespace
} // namespace bpfchain::dataplane
