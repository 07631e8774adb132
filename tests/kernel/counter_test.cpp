// The `counter` kernel function, built by bpfchain_bpf_object: verdicts and counts under
// BPF_PROG_TEST_RUN, and real packets through a veth between two network namespaces.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include <arpa/inet.h>
#include <array>
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <vector>

#include "bpfchain/counter.h"
#include "counter.skel.h"
#include "harness/netns.h"
#include "system/fd.h"

namespace bpfchain::testing {
namespace {

struct SkeletonDeleter {
  void operator()(counter* skel) const { counter::destroy(skel); }
};
using CounterSkeleton = std::unique_ptr<counter, SkeletonDeleter>;

CounterSkeleton openAndLoad() {
  return CounterSkeleton(counter::open_and_load());
}

counter_value readCounter(const counter& skel) {
  int cpus = libbpf_num_possible_cpus();
  std::vector<counter_value> perCpu(cpus);
  __u32 key = 0;
  counter_value total{};
  if (bpf_map__lookup_elem(skel.maps.counter_stats, &key, sizeof key, perCpu.data(),
                           perCpu.size() * sizeof(counter_value), 0) != 0) {
    ADD_FAILURE() << "lookup counter_stats: " << std::strerror(errno);
    return total;
  }
  for (const auto& v : perCpu) {
    total.packets += v.packets;
    total.bytes += v.bytes;
  }
  return total;
}

// Ethernet + IPv4 + UDP, 64 bytes, enough for any hook's minimum.
std::array<unsigned char, 64> udpFrame() {
  std::array<unsigned char, 64> frame{};
  frame[12] = 0x08; // ethertype IPv4
  frame[14] = 0x45; // version 4, IHL 5
  frame[16] = 0;
  frame[17] = 50; // total length
  frame[22] = 64; // TTL
  frame[23] = 17; // UDP
  return frame;
}

TEST(CounterProgram, XdpCountsEveryRunAndPasses) {
  auto skel = openAndLoad();
  ASSERT_TRUE(skel) << "load counter: " << std::strerror(errno);
  auto frame = udpFrame();
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = frame.size(),
              .repeat = 100);
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.counter_xdp), &opts), 0)
      << std::strerror(errno);
  EXPECT_EQ(opts.retval, static_cast<__u32>(XDP_PASS));
  counter_value total = readCounter(*skel);
  EXPECT_EQ(total.packets, 100u);
  EXPECT_EQ(total.bytes, 100u * frame.size());
}

TEST(CounterProgram, TcCountsEveryRunAndPassesToTheNextProgram) {
  auto skel = openAndLoad();
  ASSERT_TRUE(skel) << "load counter: " << std::strerror(errno);
  auto frame = udpFrame();
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = frame.size(),
              .repeat = 10);
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.counter_tc), &opts), 0)
      << std::strerror(errno);
  EXPECT_EQ(static_cast<int>(opts.retval), -1); // TC_ACT_UNSPEC == TCX_NEXT
  counter_value total = readCounter(*skel);
  EXPECT_EQ(total.packets, 10u);
  EXPECT_EQ(total.bytes, 10u * frame.size());
}

class CounterOnVeth : public ::testing::Test {
protected:
  void SetUp() override {
    auto hosts = twoHostsOnVeth();
    ASSERT_TRUE(hosts.ok()) << hosts.error().message();
    sender_ = std::make_unique<TestNetns>(std::move(hosts->sender));
    receiver_ = std::make_unique<TestNetns>(std::move(hosts->receiver));
  }

  // Creates a UDP socket inside ns.
  static FD udpSocketIn(const TestNetns& ns) {
    auto guard = ns.enter();
    if (!guard) {
      ADD_FAILURE() << guard.error().message();
      return FD();
    }
    return FD(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  }

  std::unique_ptr<TestNetns> sender_;
  std::unique_ptr<TestNetns> receiver_;
};

TEST_F(CounterOnVeth, CountsEveryPacketSentThroughTheInterface) {
  auto skel = openAndLoad();
  ASSERT_TRUE(skel) << "load counter: " << std::strerror(errno);
  auto ifindex = receiver_->ifindex("veth-b");
  ASSERT_TRUE(ifindex.ok()) << ifindex.error().message();
  bpf_link* link = nullptr;
  {
    auto guard = receiver_->enter();
    ASSERT_TRUE(guard.ok()) << guard.error().message();
    link = bpf_program__attach_xdp(skel->progs.counter_xdp, *ifindex);
  }
  ASSERT_NE(link, nullptr) << "attach xdp to veth-b: " << std::strerror(errno);
  std::unique_ptr<bpf_link, int (*)(bpf_link*)> linkOwner(link, bpf_link__destroy);

  FD rx = udpSocketIn(*receiver_);
  FD tx = udpSocketIn(*sender_);
  ASSERT_TRUE(rx.valid() && tx.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(9999);
  addr.sin_addr.s_addr = inet_addr("10.77.0.2");
  ASSERT_EQ(::bind(rx.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  // Bursts smaller than the veth NAPI ring (256), each drained before the next, so that a
  // full ring can never drop a packet before the program sees it.
  constexpr int kBursts = 40, kBurst = 25, kPayload = 100;
  char payload[kPayload] = {};
  char buf[2048];
  int received = 0;
  for (int burst = 0; burst < kBursts; ++burst) {
    for (int i = 0; i < kBurst; ++i) {
      ASSERT_EQ(::sendto(tx.get(), payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&addr),
                         sizeof addr),
                kPayload)
          << std::strerror(errno);
    }
    while (received < (burst + 1) * kBurst) {
      pollfd pfd{rx.get(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 2000), 1) << "timed out after " << received << " packets";
      ASSERT_EQ(::recv(rx.get(), buf, sizeof buf, 0), kPayload);
      ++received;
    }
  }

  constexpr int kSent = kBursts * kBurst;
  constexpr int kFrame = 14 + 20 + 8 + kPayload;
  counter_value total = readCounter(*skel);
  EXPECT_EQ(received, kSent); // XDP_PASS: every packet reached the socket
  EXPECT_EQ(total.packets, static_cast<__u64>(kSent));
  EXPECT_EQ(total.bytes, static_cast<__u64>(kSent) * kFrame);
}

} // namespace
} // namespace bpfchain::testing
