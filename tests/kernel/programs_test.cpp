// Every kernel function in bpf/ under BPF_PROG_TEST_RUN, through both of its entry points (XDP
// and TC), in Katran's style: tables of {description, packet, expected verdict}. Every run must
// return the packet unchanged and, for programs with chain.h statistics, count it in SEEN and in
// the slot of its verdict, and nowhere else.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "blocklist.skel.h"
#include "bpfchain/blocklist.h"
#include "bpfchain/counter.h"
#include "bpfchain/ratelimit.h"
#include "counter.skel.h"
#include "harness/packet_builder.h"
#include "portfilter.skel.h"
#include "ratelimit.skel.h"

namespace bpfchain::testing {
namespace {

// The chain.h statistics layout (a BPF-only header, so restated here; a change breaks this).
constexpr int kStatsSlots = 16;
constexpr int kStatSeen = 0;
constexpr int kStatVerdictBase = 2;

enum class Entry { Xdp, Tc };
enum class Expect { Pass, Drop };

struct PacketCase {
  std::string description;
  Bytes packet;
  Expect expect = Expect::Pass;
};

int verdictOf(Entry entry, Expect expect) {
  if (entry == Entry::Xdp)
    return expect == Expect::Pass ? XDP_PASS : XDP_DROP;
  return expect == Expect::Pass ? TC_ACT_UNSPEC : TC_ACT_SHOT;
}

const char* entryName(Entry entry) {
  return entry == Entry::Xdp ? "xdp" : "tc";
}

template <typename Skeleton> struct SkeletonDeleter {
  void operator()(Skeleton* skel) const { Skeleton::destroy(skel); }
};
template <typename Skeleton>
using SkeletonPtr = std::unique_ptr<Skeleton, SkeletonDeleter<Skeleton>>;

// One entry point of a loaded program, and its chain.h statistics map (nullptr: none).
struct Program {
  bpf_program* prog;
  bpf_map* stats;
  Entry entry;
};

void addTo(__u64& total, __u64 value) {
  total += value;
}

void addTo(counter_value& total, const counter_value& value) {
  total.packets += value.packets;
  total.bytes += value.bytes;
}

// The per-CPU values of one key of a per-CPU map, summed.
template <typename Value> Value sumPerCpu(const bpf_map* map, __u32 key) {
  std::vector<Value> perCpu(libbpf_num_possible_cpus());
  Value total{};
  if (bpf_map__lookup_elem(map, &key, sizeof key, perCpu.data(), perCpu.size() * sizeof(Value),
                           0) != 0) {
    ADD_FAILURE() << "lookup " << bpf_map__name(map) << "[" << key << "]: " << std::strerror(errno);
    return total;
  }
  for (const Value& v : perCpu)
    addTo(total, v);
  return total;
}

std::array<__u64, kStatsSlots> readStats(const bpf_map* stats) {
  std::array<__u64, kStatsSlots> slots{};
  for (int slot = 0; slot < kStatsSlots; ++slot)
    slots[slot] = sumPerCpu<__u64>(stats, slot);
  return slots;
}

// BPF_PROG_TEST_RUN of a TC program refuses (EINVAL) a frame whose ethertype is IPv4 or IPv6
// but which is shorter than that IP header (the kernel reads it to set up the skb). XDP takes
// any frame of at least 14 bytes. The TC parser's truncation paths are still covered by the
// same frames behind a VLAN tag, which the kernel does not look into.
bool kernelRefuses(Entry entry, const Bytes& packet) {
  if (entry != Entry::Tc || packet.size() < 14)
    return false;
  const unsigned type = packet[12] << 8 | packet[13];
  return (type == 0x0800 && packet.size() < 14 + 20) || (type == 0x86DD && packet.size() < 14 + 40);
}

// Runs one packet once; expects the verdict, the packet back unchanged, and (when the program
// has statistics) SEEN + 1 and the verdict's slot + 1. chainEndsHere is false when a program
// sits in the next map, which takes a passed packet: then only SEEN moves.
void runCase(const Program& program, const PacketCase& c, bool chainEndsHere = true) {
  SCOPED_TRACE(std::string(entryName(program.entry)) + ": " + c.description + " (" +
               std::to_string(c.packet.size()) + " bytes)");
  std::array<__u64, kStatsSlots> before{};
  if (program.stats)
    before = readStats(program.stats);

  if (kernelRefuses(program.entry, c.packet)) {
    LIBBPF_OPTS(bpf_test_run_opts, refused, .data_in = c.packet.data(),
                .data_size_in = static_cast<__u32>(c.packet.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(program.prog), &refused), -EINVAL)
        << "the kernel ran a TC program on a frame shorter than its IP header";
    if (program.stats) {
      EXPECT_EQ(readStats(program.stats), before) << "chain.h statistics";
    }
    return;
  }

  Bytes out(c.packet.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.packet.data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(c.packet.size()),
              .data_size_out = static_cast<__u32>(out.size()), .repeat = 1);
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(program.prog), &opts), 0)
      << "test_run: " << std::strerror(errno);
  const int verdict = verdictOf(program.entry, c.expect);
  EXPECT_EQ(static_cast<int>(opts.retval), verdict);
  out.resize(opts.data_size_out);
  EXPECT_EQ(out, c.packet) << "the program changed the packet";

  if (!program.stats)
    return;
  std::array<__u64, kStatsSlots> expected = before;
  expected[kStatSeen]++;
  if (chainEndsHere || c.expect == Expect::Drop)
    expected[verdict + kStatVerdictBase]++;
  EXPECT_EQ(readStats(program.stats), expected) << "chain.h statistics";
}

void runCases(const Program& program, const std::vector<PacketCase>& cases) {
  for (const PacketCase& c : cases)
    runCase(program, c);
}

PacketBuilder eth() {
  return PacketBuilder().eth("02:00:00:00:00:01", "02:00:00:00:00:02");
}

constexpr const char* kClient4 = "192.0.2.1";
constexpr const char* kServer4 = "192.0.2.100";
constexpr const char* kClient6 = "2001:db8::1";
constexpr const char* kServer6 = "2001:db8::100";

// Packets that every program must pass when its maps list nothing they carry: ordinary IPv4 and
// IPv6 traffic in every shape the parser knows, and odd frames it must hand on untouched.
std::vector<PacketCase> ordinaryAndOddPackets() {
  const auto& hbh = PacketBuilder::kIpv6HopByHop;
  const auto& routing = PacketBuilder::kIpv6Routing;
  const auto& dstopts = PacketBuilder::kIpv6DestOptions;
  PacketBuilder nineExtensions = eth().ipv6(kClient6, kServer6);
  Bytes versionSix(60, 0);
  versionSix[0] = 0x65;
  for (int i = 0; i < 9; ++i)
    nineExtensions.ipv6Ext(dstopts);
  return {
      {"IPv4 UDP", eth().ipv4(kClient4, kServer4).udp(40000, 80).payload(16).build()},
      {"IPv4 TCP", eth().ipv4(kClient4, kServer4).tcp(40000, 443).build()},
      {"IPv4 ICMP echo", eth().ipv4(kClient4, kServer4).icmp().payload(8).build()},
      {"IPv4 with options, UDP",
       eth().ipv4(kClient4, kServer4).ipv4Options({1, 1, 1, 0}).udp(40000, 80).build()},
      {"IPv4 first fragment, UDP",
       eth().ipv4(kClient4, kServer4).ipv4Fragment(0, true).udp(40000, 80).payload(16).build()},
      {"IPv4 non-first fragment",
       eth().ipv4(kClient4, kServer4).ipv4Fragment(24, false).payload(24).build()},
      {"IPv6 UDP", eth().ipv6(kClient6, kServer6).udp(40000, 80).payload(16).build()},
      {"IPv6 TCP", eth().ipv6(kClient6, kServer6).tcp(40000, 443).build()},
      {"IPv6 ICMPv6 echo", eth().ipv6(kClient6, kServer6).icmpv6().build()},
      {"IPv6 hop-by-hop, routing, destination options, UDP", eth()
                                                                 .ipv6(kClient6, kServer6)
                                                                 .ipv6Ext(hbh)
                                                                 .ipv6Ext(routing, 24)
                                                                 .ipv6Ext(dstopts, 16)
                                                                 .udp(40000, 80)
                                                                 .build()},
      {"IPv6 AH, TCP",
       eth().ipv6(kClient6, kServer6).ipv6Ext(PacketBuilder::kIpv6Ah, 24).tcp(40000, 443).build()},
      {"IPv6 first fragment, UDP",
       eth().ipv6(kClient6, kServer6).ipv6Fragment(0, true).udp(40000, 80).payload(16).build()},
      {"IPv6 non-first fragment",
       eth().ipv6(kClient6, kServer6).ipv6Fragment(24, false).payload(24).build()},
      {"IPv6 with 9 extension headers, more than the parser walks",
       nineExtensions.udp(40000, 80).build()},
      {"802.1Q, IPv4 UDP", eth().vlan(100).ipv4(kClient4, kServer4).udp(40000, 80).build()},
      {"802.1ad + 802.1Q, IPv6 TCP", eth()
                                         .vlan(200, PacketBuilder::kTpid8021AD)
                                         .vlan(100)
                                         .ipv6(kClient6, kServer6)
                                         .tcp(40000, 443)
                                         .build()},
      {"three VLAN tags, IPv4 UDP",
       eth().vlan(1).vlan(2).vlan(3).ipv4(kClient4, kServer4).udp(40000, 80).build()},
      {"ARP request", eth().arp(kClient4, kServer4).build()},
      {"unknown ethertype (LLDP)", eth().ethertype(0x88cc).payload(46).build()},
      {"IPv4 with IHL 4", eth().ipv4(kClient4, kServer4).ipv4Ihl(4).udp(40000, 80).build()},
      {"IPv4 ethertype, version 6 header", eth().ethertype(0x0800).payload(versionSix).build()},
      {"14 bytes: Ethernet header only", eth().ipv4(kClient4, kServer4).truncate(14).build()},
      {"16 bytes: VLAN tag cut short",
       eth().vlan(100).ipv4(kClient4, kServer4).truncate(16).build()},
      {"20 bytes: IPv4 header cut short", eth().ipv4(kClient4, kServer4).truncate(20).build()},
      {"34 bytes: IPv4 header, no transport header",
       eth().ipv4(kClient4, kServer4).udp(40000, 80).truncate(34).build()},
      {"37 bytes: IPv4, 3 bytes of UDP",
       eth().ipv4(kClient4, kServer4).udp(40000, 80).truncate(37).build()},
      {"44 bytes: IPv4, TCP header cut at 10 bytes",
       eth().ipv4(kClient4, kServer4).tcp(40000, 443).truncate(44).build()},
      {"IPv4 options cut short",
       eth().ipv4(kClient4, kServer4).ipv4Options(Bytes(40, 1)).truncate(50).build()},
      {"50 bytes: IPv6 header cut short", eth().ipv6(kClient6, kServer6).truncate(50).build()},
      {"802.1Q, 18 bytes: no IPv4 header",
       eth().vlan(100).ipv4(kClient4, kServer4).truncate(18).build()},
      {"802.1Q, 37 bytes: IPv4 header cut short",
       eth().vlan(100).ipv4(kClient4, kServer4).truncate(37).build()},
      {"802.1Q, 41 bytes: IPv4 with options cut short",
       eth().vlan(100).ipv4(kClient4, kServer4).ipv4Options(Bytes(8, 1)).truncate(41).build()},
      {"802.1Q, 57 bytes: IPv6 header cut short",
       eth().vlan(100).ipv6(kClient6, kServer6).truncate(57).build()},
      {"IPv6 extension header cut short",
       eth().ipv6(kClient6, kServer6).ipv6Ext(hbh, 16).udp(40000, 80).truncate(62).build()},
  };
}

class EntryTest : public ::testing::TestWithParam<Entry> {
protected:
  Entry entry() const { return GetParam(); }
  template <typename T> T pick(T xdp, T tc) const { return entry() == Entry::Xdp ? xdp : tc; }
};

std::string entryParamName(const ::testing::TestParamInfo<Entry>& info) {
  return info.param == Entry::Xdp ? "Xdp" : "Tc";
}

// --- Frames the kernel refuses -------------------------------------------------------------

class TestRun : public EntryTest {};

TEST_P(TestRun, KernelRefusesFramesShorterThanAnEthernetHeader) {
  SkeletonPtr<portfilter> skel(portfilter::open_and_load());
  ASSERT_TRUE(skel) << "load portfilter: " << std::strerror(errno);
  Bytes frame = eth().ipv4(kClient4, kServer4).truncate(13).build();
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<__u32>(frame.size()), .repeat = 1);
  bpf_program* prog = pick(skel->progs.portfilter_xdp, skel->progs.portfilter_tc);
  EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), -EINVAL);
  EXPECT_EQ(sumPerCpu<__u64>(skel->maps.portfilter_stats, kStatSeen), 0u);
}

INSTANTIATE_TEST_SUITE_P(Entries, TestRun, ::testing::Values(Entry::Xdp, Entry::Tc),
                         entryParamName);

// --- counter -------------------------------------------------------------------------------

class CounterProgram : public EntryTest {};

TEST_P(CounterProgram, PassesAndCountsEveryPacket) {
  SkeletonPtr<counter> skel(counter::open_and_load());
  ASSERT_TRUE(skel) << "load counter: " << std::strerror(errno);
  Program program{pick(skel->progs.counter_xdp, skel->progs.counter_tc), nullptr, entry()};
  for (const PacketCase& c : ordinaryAndOddPackets()) {
    counter_value before = sumPerCpu<counter_value>(skel->maps.counter_stats, 0);
    runCase(program, c);
    counter_value after = sumPerCpu<counter_value>(skel->maps.counter_stats, 0);
    const bool ran = !kernelRefuses(entry(), c.packet);
    EXPECT_EQ(after.packets, before.packets + (ran ? 1 : 0)) << c.description;
    EXPECT_EQ(after.bytes, before.bytes + (ran ? c.packet.size() : 0)) << c.description;
  }
}

INSTANTIATE_TEST_SUITE_P(Entries, CounterProgram, ::testing::Values(Entry::Xdp, Entry::Tc),
                         entryParamName);

// --- portfilter ----------------------------------------------------------------------------

class PortfilterProgram : public EntryTest {
protected:
  void SetUp() override {
    skel_.reset(portfilter::open_and_load());
    ASSERT_TRUE(skel_) << "load portfilter: " << std::strerror(errno);
    // 53 and 8080 drop; 9999 is listed with 0, which passes.
    setPort(53, 1);
    setPort(8080, 1);
    setPort(9999, 0);
  }

  void setPort(__u16 port, __u8 drop) {
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.portfilter_ports, &port, sizeof port, &drop,
                                   sizeof drop, BPF_ANY),
              0)
        << std::strerror(errno);
  }

  Program program() const {
    return {pick(skel_->progs.portfilter_xdp, skel_->progs.portfilter_tc),
            skel_->maps.portfilter_stats, entry()};
  }

  SkeletonPtr<portfilter> skel_;
};

TEST_P(PortfilterProgram, PassesOrdinaryAndOddPacketsToUnlistedPorts) {
  runCases(program(), ordinaryAndOddPackets());
}

TEST_P(PortfilterProgram, DropsTcpAndUdpToListedDestinationPorts) {
  const auto& hbh = PacketBuilder::kIpv6HopByHop;
  const auto& routing = PacketBuilder::kIpv6Routing;
  const auto& dstopts = PacketBuilder::kIpv6DestOptions;
  const Expect drop = Expect::Drop;
  runCases(
      program(),
      {
          {"IPv4 UDP to 53", eth().ipv4(kClient4, kServer4).udp(40000, 53).payload(20).build(),
           drop},
          {"42 bytes: IPv4 UDP to 53, no payload",
           eth().ipv4(kClient4, kServer4).udp(40000, 53).build(), drop},
          {"IPv4 TCP to 8080", eth().ipv4(kClient4, kServer4).tcp(40000, 8080).build(), drop},
          {"IPv6 UDP to 53", eth().ipv6(kClient6, kServer6).udp(40000, 53).build(), drop},
          {"IPv6 TCP to 8080", eth().ipv6(kClient6, kServer6).tcp(40000, 8080).build(), drop},
          {"802.1Q, IPv4 UDP to 53", eth().vlan(7).ipv4(kClient4, kServer4).udp(1, 53).build(),
           drop},
          {"802.1ad + 802.1Q, IPv6 TCP to 8080",
           eth()
               .vlan(8, PacketBuilder::kTpid8021AD)
               .vlan(7)
               .ipv6(kClient6, kServer6)
               .tcp(40000, 8080)
               .build(),
           drop},
          {"IPv6 hop-by-hop, routing, destination options, UDP to 53",
           eth()
               .ipv6(kClient6, kServer6)
               .ipv6Ext(hbh, 16)
               .ipv6Ext(routing)
               .ipv6Ext(dstopts, 8)
               .udp(40000, 53)
               .build(),
           drop},
          {"IPv6 AH, TCP to 8080",
           eth().ipv6(kClient6, kServer6).ipv6Ext(PacketBuilder::kIpv6Ah, 16).tcp(1, 8080).build(),
           drop},
          {"IPv4 first fragment, UDP to 53",
           eth().ipv4(kClient4, kServer4).ipv4Fragment(0, true).udp(40000, 53).build(), drop},
          {"IPv6 first fragment, UDP to 53",
           eth().ipv6(kClient6, kServer6).ipv6Fragment(0, true).udp(40000, 53).build(), drop},
          {"IPv4 with 40 bytes of options, UDP to 53",
           eth().ipv4(kClient4, kServer4).ipv4Options(Bytes(40, 1)).udp(40000, 53).build(), drop},
      });
}

TEST_P(PortfilterProgram, PassesWhatOnlyLooksLikeAListedPort) {
  const auto& dstopts = PacketBuilder::kIpv6DestOptions;
  PacketBuilder nineExtensions = eth().ipv6(kClient6, kServer6);
  for (int i = 0; i < 9; ++i)
    nineExtensions.ipv6Ext(dstopts);
  runCases(
      program(),
      {
          {"IPv4 UDP from 53", eth().ipv4(kClient4, kServer4).udp(53, 40000).build()},
          {"IPv4 UDP to 54", eth().ipv4(kClient4, kServer4).udp(40000, 54).build()},
          {"IPv4 TCP to 9999, listed with 0", eth().ipv4(kClient4, kServer4).tcp(1, 9999).build()},
          {"IPv4 SCTP to 53 (only TCP and UDP are filtered)",
           eth().ipv4(kClient4, kServer4).ipv4Protocol(132).udp(40000, 53).build()},
          {"IPv4 non-first fragment whose payload reads as UDP to 53",
           eth().ipv4(kClient4, kServer4).ipv4Fragment(8, false).udp(40000, 53).build()},
          {"IPv6 non-first fragment whose payload reads as UDP to 53",
           eth().ipv6(kClient6, kServer6).ipv6Fragment(8, false).udp(40000, 53).build()},
          // NOP, NOP, EOL, 0x35: a parser that ignored the IHL would read port 53 here.
          {"IPv4 options that read as port 53 if IHL were ignored, UDP to 40000",
           eth().ipv4(kClient4, kServer4).ipv4Options({1, 1, 0, 53}).udp(40000, 40000).build()},
          {"IPv4 with IHL 4, UDP to 53",
           eth().ipv4(kClient4, kServer4).ipv4Ihl(4).udp(40000, 53).build()},
          {"37 bytes: IPv4, UDP to 53 cut after 3 bytes",
           eth().ipv4(kClient4, kServer4).udp(40000, 53).truncate(37).build()},
          {"41 bytes: IPv4, UDP to 53 cut after 7 bytes",
           eth().ipv4(kClient4, kServer4).udp(40000, 53).truncate(41).build()},
          {"53 bytes: IPv4, TCP to 8080 cut after 19 bytes",
           eth().ipv4(kClient4, kServer4).tcp(40000, 8080).truncate(53).build()},
          {"IPv6 extension header cut short, UDP to 53", eth()
                                                             .ipv6(kClient6, kServer6)
                                                             .ipv6Ext(dstopts, 16)
                                                             .udp(40000, 53)
                                                             .truncate(14 + 40 + 12)
                                                             .build()},
          {"IPv6 with 9 extension headers, UDP to 53 (beyond the parser)",
           nineExtensions.udp(40000, 53).build()},
          {"three VLAN tags, IPv4 UDP to 53",
           eth().vlan(1).vlan(2).vlan(3).ipv4(kClient4, kServer4).udp(40000, 53).build()},
      });
}

INSTANTIATE_TEST_SUITE_P(Entries, PortfilterProgram, ::testing::Values(Entry::Xdp, Entry::Tc),
                         entryParamName);

// --- blocklist -----------------------------------------------------------------------------

class BlocklistProgram : public EntryTest {
protected:
  void SetUp() override {
    skel_.reset(blocklist::open_and_load());
    ASSERT_TRUE(skel_) << "load blocklist: " << std::strerror(errno);
    // Longest prefix wins: 10/8 blocked, 10.1/16 carved out, 10.1.2/24 blocked again.
    blockV4("10.0.0.0", 8, 1);
    blockV4("10.1.0.0", 16, 0);
    blockV4("10.1.2.0", 24, 1);
    blockV4("198.51.100.7", 32, 1);
    blockV6("2001:db8:bad::", 48, 1);
    blockV6("2001:db8:bad:1::", 64, 0);
  }

  void blockV4(const char* addr, __u32 prefixlen, __u8 drop) {
    blocklist_v4_key key{prefixlen, {}};
    ASSERT_EQ(inet_pton(AF_INET, addr, key.addr), 1);
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.blocklist_v4, &key, sizeof key, &drop, sizeof drop,
                                   BPF_ANY),
              0)
        << std::strerror(errno);
  }

  void blockV6(const char* addr, __u32 prefixlen, __u8 drop) {
    blocklist_v6_key key{prefixlen, {}};
    ASSERT_EQ(inet_pton(AF_INET6, addr, key.addr), 1);
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.blocklist_v6, &key, sizeof key, &drop, sizeof drop,
                                   BPF_ANY),
              0)
        << std::strerror(errno);
  }

  Program program() const {
    return {pick(skel_->progs.blocklist_xdp, skel_->progs.blocklist_tc),
            skel_->maps.blocklist_stats, entry()};
  }

  SkeletonPtr<blocklist> skel_;
};

TEST_P(BlocklistProgram, PassesOrdinaryAndOddPacketsFromUnlistedSources) {
  runCases(program(), ordinaryAndOddPackets());
}

TEST_P(BlocklistProgram, DropsSourcesWhoseLongestMatchingPrefixIsBlocked) {
  const Expect drop = Expect::Drop;
  PacketBuilder nineExtensions = eth().ipv6("2001:db8:bad::1", kServer6);
  for (int i = 0; i < 9; ++i)
    nineExtensions.ipv6Ext(PacketBuilder::kIpv6DestOptions);
  runCases(
      program(),
      {
          {"IPv4 UDP from 10.9.9.9 (10/8)", eth().ipv4("10.9.9.9", kServer4).udp(1, 2).build(),
           drop},
          {"IPv4 TCP from 10.1.2.3 (10.1.2/24 inside the 10.1/16 exception)",
           eth().ipv4("10.1.2.3", kServer4).tcp(1, 2).build(), drop},
          {"IPv4 from 198.51.100.7 (/32)", eth().ipv4("198.51.100.7", kServer4).udp(1, 2).build(),
           drop},
          {"IPv4 ICMP from 10.9.9.9", eth().ipv4("10.9.9.9", kServer4).icmp().build(), drop},
          {"IPv4 non-first fragment from 10.9.9.9",
           eth().ipv4("10.9.9.9", kServer4).ipv4Fragment(64, false).payload(32).build(), drop},
          {"IPv4 with options from 10.9.9.9",
           eth().ipv4("10.9.9.9", kServer4).ipv4Options(Bytes(8, 1)).udp(1, 2).build(), drop},
          {"34 bytes: IPv4 header only, from 10.9.9.9",
           eth().ipv4("10.9.9.9", kServer4).udp(1, 2).truncate(34).build(), drop},
          {"802.1Q, IPv4 from 10.9.9.9", eth().vlan(5).ipv4("10.9.9.9", kServer4).build(), drop},
          {"IPv6 UDP from 2001:db8:bad::1 (/48)",
           eth().ipv6("2001:db8:bad::1", kServer6).udp(1, 2).build(), drop},
          {"IPv6 extension headers, from 2001:db8:bad:2::1",
           eth()
               .ipv6("2001:db8:bad:2::1", kServer6)
               .ipv6Ext(PacketBuilder::kIpv6HopByHop)
               .ipv6Ext(PacketBuilder::kIpv6Routing)
               .tcp(1, 2)
               .build(),
           drop},
          {"IPv6 non-first fragment from 2001:db8:bad::1",
           eth().ipv6("2001:db8:bad::1", kServer6).ipv6Fragment(64, false).payload(8).build(),
           drop},
          {"802.1ad + 802.1Q, IPv6 from 2001:db8:bad::1",
           eth()
               .vlan(9, PacketBuilder::kTpid8021AD)
               .vlan(5)
               .ipv6("2001:db8:bad::1", kServer6)
               .icmpv6()
               .build(),
           drop},
          {"IPv6 from 2001:db8:bad::1 with 9 extension headers", nineExtensions.udp(1, 2).build(),
           drop},
      });
}

TEST_P(BlocklistProgram, PassesExceptionsNeighboursDestinationsAndUnparsableFrames) {
  Bytes ipv6WithVersion4 = eth().ipv6("2001:db8:bad::1", kServer6).udp(1, 2).build();
  ipv6WithVersion4[14] = 0x40;
  runCases(
      program(),
      {
          {"IPv4 from 10.1.9.9 (the 10.1/16 exception)",
           eth().ipv4("10.1.9.9", kServer4).udp(1, 2).build()},
          {"IPv4 from 198.51.100.8 (next to a /32)",
           eth().ipv4("198.51.100.8", kServer4).udp(1, 2).build()},
          {"IPv4 from 11.0.0.1", eth().ipv4("11.0.0.1", kServer4).udp(1, 2).build()},
          {"IPv4 to 10.9.9.9 (destinations are not checked)",
           eth().ipv4(kClient4, "10.9.9.9").udp(1, 2).build()},
          {"IPv6 from 2001:db8:bad:1::1 (the /64 exception)",
           eth().ipv6("2001:db8:bad:1::1", kServer6).udp(1, 2).build()},
          {"IPv6 from 2001:db8:bae::1", eth().ipv6("2001:db8:bae::1", kServer6).udp(1, 2).build()},
          {"IPv6 to 2001:db8:bad::1", eth().ipv6(kClient6, "2001:db8:bad::1").udp(1, 2).build()},
          {"IPv6 from ::ffff:10.9.9.9 (IPv6 sources use blocklist_v6 only)",
           eth().ipv6("::ffff:10.9.9.9", kServer6).udp(1, 2).build()},
          {"IPv4 with IHL 4 from 10.9.9.9",
           eth().ipv4("10.9.9.9", kServer4).ipv4Ihl(4).udp(1, 2).build()},
          {"33 bytes: IPv4 header from 10.9.9.9 cut short",
           eth().ipv4("10.9.9.9", kServer4).udp(1, 2).truncate(33).build()},
          {"802.1Q, 37 bytes: IPv4 header from 10.9.9.9 cut short",
           eth().vlan(5).ipv4("10.9.9.9", kServer4).udp(1, 2).truncate(37).build()},
          {"802.1Q, IPv4 options from 10.9.9.9 cut short",
           eth().vlan(5).ipv4("10.9.9.9", kServer4).ipv4Options(Bytes(12, 1)).truncate(40).build()},
          {"802.1Q, 57 bytes: IPv6 header from 2001:db8:bad::1 cut short",
           eth().vlan(5).ipv6("2001:db8:bad::1", kServer6).truncate(57).build()},
          {"IPv6 ethertype, version 4, from 2001:db8:bad::1", ipv6WithVersion4},
          {"ARP from 10.9.9.9", eth().arp("10.9.9.9", kServer4).build()},
          {"IPv6 from 2001:db8:bad::1, extension header cut short",
           eth()
               .ipv6("2001:db8:bad::1", kServer6)
               .ipv6Ext(PacketBuilder::kIpv6HopByHop, 16)
               .udp(1, 2)
               .truncate(14 + 40 + 8)
               .build()},
          {"three VLAN tags, IPv4 from 10.9.9.9",
           eth().vlan(1).vlan(2).vlan(3).ipv4("10.9.9.9", kServer4).udp(1, 2).build()},
      });
}

TEST_P(BlocklistProgram, AppliesMapUpdatesToTheNextPacket) {
  Bytes packet = eth().ipv4("203.0.113.5", kServer4).udp(1, 2).build();
  runCase(program(), {"before 203.0.113.0/24 is blocked", packet});
  blockV4("203.0.113.0", 24, 1);
  runCase(program(), {"after 203.0.113.0/24 is blocked", packet, Expect::Drop});
  blockV4("203.0.113.5", 32, 0);
  runCase(program(), {"after 203.0.113.5/32 is excepted", packet});
}

INSTANTIATE_TEST_SUITE_P(Entries, BlocklistProgram, ::testing::Values(Entry::Xdp, Entry::Tc),
                         entryParamName);

// --- ratelimit -----------------------------------------------------------------------------

class RatelimitProgram : public EntryTest {
protected:
  // Loads with these globals; 0 leaves the program's default.
  void load(__u64 ratePps, __u64 burst) {
    skel_.reset(ratelimit::open());
    ASSERT_TRUE(skel_) << "open ratelimit: " << std::strerror(errno);
    if (ratePps != kDefault)
      skel_->rodata->rate_pps = ratePps;
    if (burst != kDefault)
      skel_->rodata->burst = burst;
    ASSERT_EQ(ratelimit::load(skel_.get()), 0) << "load ratelimit: " << std::strerror(errno);
  }

  void configure(__u64 ratePps, __u64 burst) {
    __u32 key = 0;
    ratelimit_config config{ratePps, burst};
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.ratelimit_config, &key, sizeof key, &config,
                                   sizeof config, BPF_ANY),
              0)
        << std::strerror(errno);
  }

  Program program() const {
    return {pick(skel_->progs.ratelimit_xdp, skel_->progs.ratelimit_tc),
            skel_->maps.ratelimit_stats, entry()};
  }

  // n packets from source, expecting `expect` for each.
  void send(const Bytes& packet, int n, Expect expect, const std::string& what) {
    for (int i = 0; i < n; ++i)
      runCase(program(), {what + " #" + std::to_string(i + 1), packet, expect});
  }

  static constexpr __u64 kDefault = ~0ULL;
  SkeletonPtr<ratelimit> skel_;
};

Bytes udpFrom4(const char* src) {
  return eth().ipv4(src, kServer4).udp(40000, 80).build();
}

Bytes udpFrom6(const char* src) {
  return eth().ipv6(src, kServer6).udp(40000, 80).build();
}

TEST_P(RatelimitProgram, PassesOrdinaryAndOddPacketsWithTheDefaults) {
  load(kDefault, kDefault);
  EXPECT_EQ(skel_->rodata->rate_pps, static_cast<__u64>(RATELIMIT_DEFAULT_RATE_PPS));
  EXPECT_EQ(skel_->rodata->burst, static_cast<__u64>(RATELIMIT_DEFAULT_BURST));
  runCases(program(), ordinaryAndOddPackets());
}

TEST_P(RatelimitProgram, DropsASourceOverItsBurstWhileOtherSourcesPass) {
  // One packet per second: no token comes back while the test runs.
  load(1, 3);
  const Bytes a = udpFrom4("198.51.100.1");
  send(a, 3, Expect::Pass, "A within its burst");
  send(a, 2, Expect::Drop, "A over its burst");
  send(udpFrom4("198.51.100.2"), 3, Expect::Pass, "B, its own bucket");
  send(eth().ipv4("198.51.100.2", kServer4).tcp(1, 2).build(), 1, Expect::Drop,
       "B over its burst, whatever the protocol");
  send(udpFrom6("2001:db8::a"), 3, Expect::Pass, "IPv6 C within its burst");
  send(eth().vlan(3).ipv6("2001:db8::a", kServer6).icmpv6().build(), 1, Expect::Drop,
       "IPv6 C over its burst, VLAN-tagged");
  send(udpFrom6("2001:db8::b"), 1, Expect::Pass, "IPv6 D, its own bucket");
  send(udpFrom6("::ffff:198.51.100.1"), 1, Expect::Drop,
       "A as ::ffff:198.51.100.1, the same bucket");
  send(eth().ipv4("198.51.100.1", kServer4).ipv4Fragment(16, false).payload(8).build(), 1,
       Expect::Drop, "A's non-first fragment");
  const std::vector<PacketCase> odd = {
      {"ARP from exhausted A", eth().arp("198.51.100.1", kServer4).build()},
      {"IHL 4 from exhausted A", eth().ipv4("198.51.100.1", kServer4).ipv4Ihl(4).udp(1, 2).build()},
      {"33 bytes: header from exhausted A cut short",
       eth().ipv4("198.51.100.1", kServer4).udp(1, 2).truncate(33).build()},
      {"802.1Q, 37 bytes: header from exhausted A cut short",
       eth().vlan(3).ipv4("198.51.100.1", kServer4).udp(1, 2).truncate(37).build()},
  };
  runCases(program(), odd);
}

TEST_P(RatelimitProgram, RefillsAtTheRate) {
  load(2, 1); // a token every 500 ms
  const Bytes a = udpFrom4("198.51.100.1");
  send(a, 1, Expect::Pass, "A's one token");
  send(a, 1, Expect::Drop, "A, empty");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  send(a, 1, Expect::Pass, "A, refilled");
}

TEST_P(RatelimitProgram, ConfigMapOverridesTheGlobalsWithoutAReload) {
  load(1, 3);
  const Bytes a = udpFrom4("198.51.100.1");
  configure(0, 5); // burst 5; the rate stays the global 1 pps
  send(a, 5, Expect::Pass, "A within the configured burst");
  send(a, 1, Expect::Drop, "A over the configured burst");

  // A token every nanosecond, burst back to 3. A's debt from 1 pps is more than the new bucket
  // holds, so it applies at once: no wait for that debt.
  configure(RATELIMIT_MAX_RATE_PPS, 0);
  send(a, 20, Expect::Pass, "A at the configured rate");

  configure(0, 0); // back to the globals
  send(a, 3, Expect::Pass, "A within the global burst");
  send(a, 1, Expect::Drop, "A over the global burst");
}

TEST_P(RatelimitProgram, RateZeroTurnsLimitingOff) {
  load(0, 1);
  send(udpFrom4("198.51.100.1"), 10, Expect::Pass, "A, unlimited");
}

INSTANTIATE_TEST_SUITE_P(Entries, RatelimitProgram, ::testing::Values(Entry::Xdp, Entry::Tc),
                         entryParamName);

// --- the chain: statistics of a program that hands packets on --------------------------------

class ChainStatistics : public EntryTest {};

TEST_P(ChainStatistics, CountAPacketHandedOnOnlyAsSeen) {
  SkeletonPtr<portfilter> filter(portfilter::open_and_load());
  ASSERT_TRUE(filter) << "load portfilter: " << std::strerror(errno);
  SkeletonPtr<counter> next(counter::open_and_load());
  ASSERT_TRUE(next) << "load counter: " << std::strerror(errno);
  __u16 port = 53;
  __u8 drop = 1;
  ASSERT_EQ(bpf_map__update_elem(filter->maps.portfilter_ports, &port, sizeof port, &drop,
                                 sizeof drop, BPF_ANY),
            0);
  // counter becomes portfilter's next program.
  __u32 slot = 0;
  int nextFd = bpf_program__fd(pick(next->progs.counter_xdp, next->progs.counter_tc));
  ASSERT_EQ(
      bpf_map__update_elem(pick(filter->maps.portfilter_xdp_next, filter->maps.portfilter_tc_next),
                           &slot, sizeof slot, &nextFd, sizeof nextFd, BPF_ANY),
      0)
      << std::strerror(errno);

  Program program{pick(filter->progs.portfilter_xdp, filter->progs.portfilter_tc),
                  filter->maps.portfilter_stats, entry()};
  // counter's own verdict is the pass verdict too; runCase checks portfilter's statistics.
  runCase(program, {"UDP to 80, handed to counter", udpFrom4("192.0.2.9")}, false);
  runCase(
      program,
      {"UDP to 53, dropped here", eth().ipv4(kClient4, kServer4).udp(1, 53).build(), Expect::Drop},
      false);
  runCase(program, {"ARP, handed to counter", eth().arp(kClient4, kServer4).build()}, false);
  counter_value counted = sumPerCpu<counter_value>(next->maps.counter_stats, 0);
  EXPECT_EQ(counted.packets, 2u) << "counter saw what portfilter handed on, and only that";

  std::array<__u64, kStatsSlots> stats = readStats(filter->maps.portfilter_stats);
  __u64 ended = 0;
  for (int slot = 1; slot < kStatsSlots; ++slot)
    ended += stats[slot];
  EXPECT_EQ(stats[kStatSeen] - ended, 2u) << "SEEN - verdicts = packets handed on";
}

INSTANTIATE_TEST_SUITE_P(Entries, ChainStatistics, ::testing::Values(Entry::Xdp, Entry::Tc),
                         entryParamName);

} // namespace
} // namespace bpfchain::testing
