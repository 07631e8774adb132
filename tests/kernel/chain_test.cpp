// The chain manager on real interfaces: programs run in order on real traffic, a thousand
// random changes under traffic lose nothing, a SIGKILLed owner's chain is adopted without a
// reload, L3AF's ABI chains unchanged, and bad input leaves the running chain as it was.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataplane/attachment.h"
#include "dataplane/chain.h"
#include "dataplane/features.h"
#include "dataplane/tail_calls.h"
#include "dataplane/tcx.h"
#include "harness/bpffs.h"
#include "harness/netns.h"
#include "harness/traffic.h"

namespace bpfchain::dataplane {
namespace {

using testing::TestBpffs;
using testing::TestNetns;
using testing::UdpTraffic;

const std::string kBpfDir = BPFCHAIN_BPF_DIR;

ProgramSpec counterSpec(const std::string& id, Hook hook = Hook::Xdp) {
  bool xdp = hook == Hook::Xdp;
  return {.id = id,
          .objectPath = kBpfDir + "/counter.bpf.o",
          .entry = xdp ? "counter_xdp" : "counter_tc",
          .nextMap = xdp ? "counter_xdp_next" : "counter_tc_next"};
}

ProgramSpec versionedSpec(const std::string& id, unsigned version) {
  return {.id = id,
          .objectPath = kBpfDir + "/versioned.bpf.o",
          .entry = "versioned_xdp",
          .nextMap = "versioned_xdp_next",
          .globalData = {{"version", std::to_string(version)}}};
}

// Sum over CPUs of a per-CPU array's u64 (or struct whose first member is u64) at key 0.
uint64_t perCpuFirstU64(int mapFd, size_t valueSize) {
  int cpus = libbpf_num_possible_cpus();
  size_t stride = (valueSize + 7) / 8 * 8;
  std::vector<unsigned char> values(stride * cpus);
  uint32_t key = 0;
  if (bpf_map_lookup_elem(mapFd, &key, values.data()) != 0) {
    ADD_FAILURE() << "lookup: " << std::strerror(errno);
    return 0;
  }
  uint64_t total = 0;
  for (int cpu = 0; cpu < cpus; ++cpu) {
    uint64_t v;
    std::memcpy(&v, values.data() + cpu * stride, sizeof v);
    total += v;
  }
  return total;
}

uint64_t counted(const Chain& chain, const std::string& id) {
  auto fd = chain.openMap(id, "counter_stats");
  if (!fd) {
    ADD_FAILURE() << fd.error().message();
    return 0;
  }
  return perCpuFirstU64(fd->get(), 16);
}

std::vector<uint32_t> programIds(const Chain& chain) {
  std::vector<uint32_t> ids;
  for (const auto& p : chain.programs())
    ids.push_back(p.programId);
  return ids;
}

class ChainOnVeth : public ::testing::Test {
protected:
  void SetUp() override {
    auto hosts = testing::twoHostsOnVeth();
    ASSERT_TRUE(hosts.ok()) << hosts.error().message();
    sender_ = std::make_unique<TestNetns>(std::move(hosts->sender));
    receiver_ = std::make_unique<TestNetns>(std::move(hosts->receiver));
    auto fs = TestBpffs::mount();
    ASSERT_TRUE(fs.ok()) << fs.error().message();
    bpffs_ = std::make_unique<TestBpffs>(std::move(*fs));
    auto ifindex = receiver_->ifindex("veth-b");
    ASSERT_TRUE(ifindex.ok()) << ifindex.error().message();
    ifindex_ = *ifindex;
    auto senderIfindex = sender_->ifindex("veth-a");
    ASSERT_TRUE(senderIfindex.ok()) << senderIfindex.error().message();
    senderIfindex_ = *senderIfindex;
    auto traffic = UdpTraffic::create(*sender_, *receiver_, "10.77.0.2", 9000);
    ASSERT_TRUE(traffic.ok()) << traffic.error().message();
    traffic_ = std::move(*traffic);
  }

  // Ingress hooks sit on the receiver's veth-b; egress on the sender's veth-a, where the
  // traffic leaves.
  const TestNetns& hookNetns(Hook hook) const {
    return hook == Hook::TcEgress ? *sender_ : *receiver_;
  }
  int hookIfindex(Hook hook) const { return hook == Hook::TcEgress ? senderIfindex_ : ifindex_; }
  std::string chainDir(Hook hook = Hook::Xdp) const {
    return bpffs_->path() + "/bpfchain/" + std::to_string(hookIfindex(hook)) + "/" +
           std::string(hookName(hook));
  }

  // Opens the chain and attaches its root to the hook's interface.
  std::pair<Chain, Attachment> openAndAttach(Hook hook = Hook::Xdp, AttachOptions options = {}) {
    auto chain = Chain::open(chainDir(hook), hook);
    if (!chain.ok()) {
      ADD_FAILURE() << chain.error().message();
      std::abort();
    }
    auto guard = hookNetns(hook).enter();
    auto attachment = Attachment::attach(chain->rootFd(), hookIfindex(hook), hook,
                                         chainDir(hook) + "/link", options);
    if (!attachment.ok()) {
      ADD_FAILURE() << attachment.error().message();
      std::abort();
    }
    return {std::move(*chain), std::move(*attachment)};
  }

  std::unique_ptr<TestNetns> sender_, receiver_;
  std::unique_ptr<TestBpffs> bpffs_;
  std::unique_ptr<UdpTraffic> traffic_;
  int ifindex_ = 0;
  int senderIfindex_ = 0;
};

TEST_F(ChainOnVeth, RunsEveryProgramOnRealTraffic) {
  auto [chain, attachment] = openAndAttach();
  EXPECT_EQ(attachment.mode(), kernelFeatures().xdpLink ? AttachMode::Link : AttachMode::Legacy);
  std::vector<ProgramSpec> specs{counterSpec("a"), counterSpec("b"), counterSpec("c")};
  auto report = chain.apply(specs);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->loaded, 3u);
  EXPECT_EQ(report->relinks, 1u); // the whole chain swapped in with one head update

  traffic_->sendAndWait(500);
  EXPECT_EQ(traffic_->received(), 500u);
  for (const char* id : {"a", "b", "c"})
    EXPECT_EQ(counted(chain, id), 500u) << id;
  ASSERT_TRUE(attachment.detach().ok());
}

TEST_F(ChainOnVeth, EmptyChainPassesEveryPacket) {
  auto [chain, attachment] = openAndAttach();
  traffic_->sendAndWait(200);
  EXPECT_EQ(traffic_->received(), 200u);
}

TEST_F(ChainOnVeth, AThousandRandomChangesUnderTrafficLoseNothing) {
  auto [chain, attachment] = openAndAttach();
  // Stable programs are in every chain (in a random order each time): they must see every
  // packet. Churn programs come and go, and `v` changes version (an upgrade, a reload).
  const std::vector<std::string> stable{"s0", "s1", "s2"};
  const std::vector<std::string> churn{"c0", "c1", "c2", "c3"};
  std::mt19937 rng(42);
  std::vector<ProgramSpec> first;
  for (const auto& id : stable)
    first.push_back(counterSpec(id));
  ASSERT_TRUE(chain.apply(first).ok());

  traffic_->start();
  ApplyReport total;
  constexpr int kMutations = 1000;
  for (int round = 0; round < kMutations; ++round) {
    std::vector<ProgramSpec> desired;
    for (const auto& id : stable)
      desired.push_back(counterSpec(id));
    for (const auto& id : churn) {
      if (rng() % 2 == 0)
        continue;
      desired.push_back(counterSpec(id));
      desired.back().enabled = rng() % 4 != 0; // listed but disabled: out of the chain
    }
    if (rng() % 2)
      desired.push_back(versionedSpec("v", rng() % 4));
    // Mostly small moves, sometimes a full shuffle.
    if (rng() % 4 == 0)
      std::shuffle(desired.begin(), desired.end(), rng);
    else if (desired.size() > 1)
      std::swap(desired[rng() % desired.size()], desired[rng() % desired.size()]);
    auto report = chain.apply(desired);
    ASSERT_TRUE(report.ok()) << "round " << round << ": " << report.error().message();
    total.loaded += report->loaded;
    total.relinks += report->relinks;
    total.retired += report->retired;
  }
  traffic_->pause();

  uint64_t sent = traffic_->sent();
  std::cout << "mutations " << kMutations << ", packets " << sent << ", loads " << total.loaded
            << ", visible slot updates " << total.relinks << ", retired " << total.retired << "\n";
  EXPECT_GT(sent, 1000u);
  EXPECT_EQ(traffic_->received(), sent) << "packets lost";
  for (const auto& id : stable)
    EXPECT_EQ(counted(chain, id), sent) << id << " missed or repeated packets";
}

TEST_F(ChainOnVeth, AdoptsTheChainOfASigkilledOwnerWithoutReloading) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The owner: builds the chain, reports its program ids, then waits to be killed.
    auto [chain, attachment] = openAndAttach();
    std::vector<ProgramSpec> specs{counterSpec("a"), counterSpec("b")};
    if (!chain.apply(specs).ok())
      ::_exit(1);
    std::vector<uint32_t> ids = programIds(chain);
    ids.push_back(chain.rootId());
    (void)!::write(ready[1], ids.data(), ids.size() * sizeof(uint32_t));
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  std::vector<uint32_t> ownerIds(3);
  ASSERT_EQ(::read(ready[0], ownerIds.data(), 3 * sizeof(uint32_t)),
            static_cast<ssize_t>(3 * sizeof(uint32_t)));
  ::close(ready[0]);

  traffic_->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  std::this_thread::sleep_for(std::chrono::milliseconds(100)); // traffic with no owner at all

  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  std::vector<uint32_t> adoptedIds = programIds(*chain);
  adoptedIds.push_back(chain->rootId());
  EXPECT_EQ(adoptedIds, ownerIds) << "the new owner reloaded programs";
  {
    auto guard = receiver_->enter();
    auto attachment = Attachment::adopt(chain->rootId(), ifindex_, Hook::Xdp, chainDir() + "/link");
    ASSERT_TRUE(attachment.ok()) << attachment.error().message();
    ASSERT_TRUE(attachment->has_value()) << "the root is no longer attached";
  }
  // The adopted chain is fully under control: change it under traffic.
  std::vector<ProgramSpec> specs{counterSpec("a"), counterSpec("x"), counterSpec("b")};
  auto report = chain->apply(specs);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->loaded, 1u);
  traffic_->pause();

  uint64_t sent = traffic_->sent();
  EXPECT_EQ(traffic_->received(), sent) << "packets lost";
  EXPECT_EQ(counted(*chain, "a"), sent);
  EXPECT_EQ(counted(*chain, "b"), sent);
}

TEST_F(ChainOnVeth, ChainsAProgramWrittenToL3afsAbi) {
  auto [chain, attachment] = openAndAttach();
  std::vector<ProgramSpec> specs{counterSpec("a"),
                                 {.id = "l3af",
                                  .objectPath = kBpfDir + "/l3af_compat.bpf.o",
                                  .entry = "xdp_l3af",
                                  .nextMap = "xdp_l3af_next_prog"},
                                 counterSpec("b")};
  auto report = chain.apply(specs);
  ASSERT_TRUE(report.ok()) << report.error().message();
  traffic_->sendAndWait(300);
  EXPECT_EQ(traffic_->received(), 300u);
  EXPECT_EQ(counted(chain, "a"), 300u);
  EXPECT_EQ(counted(chain, "b"), 300u);
  auto count = chain.openMap("l3af", "xdp_l3af_count");
  ASSERT_TRUE(count.ok()) << count.error().message();
  EXPECT_EQ(perCpuFirstU64(count->get(), sizeof(long)), 300u);
  // Its pin-by-name maps live in its own instance directory, not in the bpffs root.
  EXPECT_FALSE(std::filesystem::exists(bpffs_->path() + "/xdp_l3af_next_prog"));
}

// The number behind kMaxChainPrograms, on this kernel: the root's call to the first program
// is a tail call, so 33 programs run behind the root and a 34th is skipped. (The data plane
// runs what it is given; the agent refuses chains that would not fit.)
TEST_F(ChainOnVeth, TheKernelRunsThirtyThreeProgramsBehindTheRoot) {
  auto [chain, attachment] = openAndAttach();
  std::vector<ProgramSpec> specs;
  for (size_t i = 0; i <= kMaxChainPrograms; ++i)
    specs.push_back(counterSpec("c" + std::to_string(i)));
  auto report = chain.apply(specs);
  ASSERT_TRUE(report.ok()) << report.error().message();
  traffic_->sendAndWait(50);
  EXPECT_EQ(traffic_->received(), 50u);
  for (size_t i = 0; i < kMaxChainPrograms; ++i)
    EXPECT_EQ(counted(chain, "c" + std::to_string(i)), 50u) << "program " << i + 1;
  EXPECT_EQ(counted(chain, "c" + std::to_string(kMaxChainPrograms)), 0u)
      << "the kernel ran more tail calls than MAX_TAIL_CALL_CNT";
}

// Runs `packets` 64-byte frames through the chain's root one at a time (BPF_PROG_TEST_RUN);
// returns how many the chain passed.
size_t passedOf(const Chain& chain, size_t packets) {
  std::vector<unsigned char> frame(64, 0);
  size_t passed = 0;
  for (size_t i = 0; i < packets; ++i) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<__u32>(frame.size()));
    if (bpf_prog_test_run_opts(chain.rootFd(), &opts) != 0) {
      ADD_FAILURE() << "test run: " << std::strerror(errno);
      return passed;
    }
    passed += opts.retval == XDP_PASS ? 1 : 0;
  }
  return passed;
}

// L3AF's kernel functions declare every map with key_size/value_size only; mapArgs writes them
// as l3afd does (integers sized by the map, hex bytes otherwise), and a change of rate is a
// map write, not a reload.
TEST_F(ChainOnVeth, ConfiguresAnL3afStyleMapLiveWithoutReload) {
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  auto limiter = [](uint64_t rate) {
    ProgramSpec spec{.id = "rl",
                     .objectPath = kBpfDir + "/l3af_ratelimit.bpf.o",
                     .entry = "xdp_l3af_ratelimit",
                     .nextMap = "xdp_rl_ingress_next_prog"};
    spec.mapArgs.push_back(
        {.map = "rl_config_map",
         .mode = btf::MapArgMode::Replace,
         .entries = {{btf::ArgValue::text("0"), btf::ArgValue::text(std::to_string(rate))}}});
    // A new window starts with the new rate: the 16-byte window slot is written as hex bytes.
    spec.mapArgs.push_back({.map = "rl_window_map",
                            .mode = btf::MapArgMode::Replace,
                            .entries = {{btf::ArgValue::text("0"),
                                         btf::ArgValue::text("0x" + std::string(32, '0'))}}});
    return std::vector<ProgramSpec>{spec, counterSpec("b")};
  };
  auto report = chain->apply(limiter(3));
  ASSERT_TRUE(report.ok()) << report.error().message();
  const auto before = programIds(*chain);

  // At most 3 a second: 20 packets sent within one second pass 3, or 6 if a second began
  // during them.
  size_t passed = passedOf(*chain, 20);
  EXPECT_GE(passed, 3u);
  EXPECT_LE(passed, 6u);
  EXPECT_EQ(counted(*chain, "b"), passed) << "what passes runs the next program";

  report = chain->apply(limiter(12));
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->loaded, 0u);
  EXPECT_EQ(programIds(*chain), before) << "a rate change reloaded the program";
  size_t passedAfter = passedOf(*chain, 40);
  EXPECT_GE(passedAfter, 12u);
  EXPECT_LE(passedAfter, 24u);
  EXPECT_EQ(counted(*chain, "b"), passed + passedAfter);

  auto drops = chain->openMap("rl", "rl_drop_count_map");
  ASSERT_TRUE(drops.ok()) << drops.error().message();
  EXPECT_EQ(perCpuFirstU64(drops->get(), sizeof(long)), 60u - passed - passedAfter);
}

// Every program is loaded as its hook's type whatever its section says, so a TC program on an
// XDP chain would load and return 0 = XDP_ABORTED for every packet: the chain refuses it.
TEST_F(ChainOnVeth, RefusesAProgramWrittenForAnotherHook) {
  auto [chain, attachment] = openAndAttach();
  ASSERT_TRUE(chain.apply(std::vector<ProgramSpec>{counterSpec("a")}).ok());
  const auto before = programIds(chain);

  ProgramSpec l3afTc{.id = "tc",
                     .objectPath = kBpfDir + "/l3af_tc.bpf.o",
                     .entry = "tc_l3af",
                     .nextMap = "tc_ingress_next_prog_array"};
  auto report = chain.apply(std::vector<ProgramSpec>{counterSpec("a"), l3afTc});
  ASSERT_FALSE(report.ok()) << "a tc program was loaded on the xdp hook";
  EXPECT_EQ(report.error().message(),
            "programs[1] (tc): entry \"tc_l3af\" in " + l3afTc.objectPath +
                ": its first argument is struct __sk_buff *: a tc program, not a program for the "
                "xdp hook");
  EXPECT_EQ(programIds(chain), before);
  traffic_->sendAndWait(50);
  EXPECT_EQ(traffic_->received(), 50u);
  EXPECT_EQ(counted(chain, "a"), 50u);

  // And the other way round; on a tc hook the same program loads.
  auto tcChain = Chain::open(chainDir(Hook::TcIngress), Hook::TcIngress);
  ASSERT_TRUE(tcChain.ok()) << tcChain.error().message();
  auto xdpOnTc = tcChain->apply(std::vector<ProgramSpec>{counterSpec("x")});
  ASSERT_FALSE(xdpOnTc.ok());
  EXPECT_EQ(xdpOnTc.error().message(),
            "programs[0] (x): entry \"counter_xdp\" in " + kBpfDir +
                "/counter.bpf.o: its first argument is struct xdp_md *: an xdp program, not a "
                "program for the tc-ingress hook");
  auto tcOnTc = tcChain->apply(std::vector<ProgramSpec>{l3afTc});
  EXPECT_TRUE(tcOnTc.ok()) << tcOnTc.error().message();
  ASSERT_TRUE(tcChain->destroy().ok());
}

TEST_F(ChainOnVeth, BadInputLeavesTheRunningChainUntouched) {
  auto [chain, attachment] = openAndAttach();
  std::vector<ProgramSpec> good{counterSpec("a"), counterSpec("b")};
  ASSERT_TRUE(chain.apply(good).ok());
  const auto before = programIds(chain);

  std::string garbage = bpffs_->path() + "/../garbage.bpf.o";
  std::ofstream(garbage) << "this is not an ELF file";
  ProgramSpec rejected{.id = "r",
                       .objectPath = kBpfDir + "/rejected.bpf.o",
                       .entry = "rejected_xdp",
                       .nextMap = "rejected_xdp_next"};
  ProgramSpec noNextMap = counterSpec("n");
  noNextMap.nextMap = "no_such_map";
  ProgramSpec badMapArg = counterSpec("m");
  badMapArg.mapArgs.push_back(
      {.map = "counter_stats",
       .mode = btf::MapArgMode::Replace,
       .entries = {{btf::ArgValue::text("0"), btf::ArgValue::text("notanumber")}}});
  ProgramSpec noEntry = counterSpec("e");
  noEntry.entry = "no_such_function";
  ProgramSpec invalid = counterSpec("i");
  invalid.objectPath = garbage;

  struct Case {
    ProgramSpec spec;
    std::string expected; // in the error message
  };
  for (const Case& c : std::vector<Case>{
           {invalid, "not a loadable BPF object"},
           {rejected, "invalid access to packet"},
           {noNextMap, "nextMap \"no_such_map\": no such map"},
           {noEntry, "entry \"no_such_function\": no such program"},
           {badMapArg, "programs[1] (m).mapArgs[0]"},
       }) {
    std::vector<ProgramSpec> desired{counterSpec("a"), c.spec, counterSpec("b")};
    auto report = chain.apply(desired);
    ASSERT_FALSE(report.ok()) << c.spec.id;
    EXPECT_NE(report.error().message().find(c.expected), std::string::npos)
        << report.error().message();
    EXPECT_EQ(programIds(chain), before) << c.spec.id;
  }
  std::vector<ProgramSpec> duplicate{counterSpec("a"), counterSpec("a")};
  EXPECT_FALSE(chain.apply(duplicate).ok());
  EXPECT_EQ(programIds(chain), before);

  traffic_->sendAndWait(100);
  EXPECT_EQ(counted(chain, "a"), 100u);
  EXPECT_EQ(counted(chain, "b"), 100u);
  // Nothing a failed apply loaded stays pinned.
  size_t instances = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(chainDir() + "/programs"))
    ++instances;
  EXPECT_EQ(instances, 2u);
  std::filesystem::remove(garbage);
}

// Another tool's program on the interface: TCX runs a hook's programs in order, and one that
// returns a final verdict first would keep the chain from ever running, so the chain's root
// attaches first (unless asked to go last). XDP has one program per interface: one that
// another tool attached is never replaced, and the failure says whose it is.
class ForeignProgram {
public:
  explicit ForeignProgram(const std::string& object) {
    obj_ = bpf_object__open_file(object.c_str(), nullptr);
    if (!obj_ || bpf_object__load(obj_) != 0)
      ADD_FAILURE() << "load " << object << ": " << std::strerror(errno);
  }
  ~ForeignProgram() {
    if (link_ >= 0)
      ::close(link_);
    bpf_object__close(obj_);
  }
  ForeignProgram(const ForeignProgram&) = delete;
  ForeignProgram& operator=(const ForeignProgram&) = delete;
  int fd() const { return bpf_program__fd(bpf_object__next_program(obj_, nullptr)); }
  uint32_t id() const {
    auto id = programIdOf(fd());
    return id ? *id : 0;
  }
  void setLink(int fd) { link_ = fd; }

private:
  bpf_object* obj_ = nullptr;
  int link_ = -1;
};

TEST_F(ChainOnVeth, TheChainRunsBeforeAnotherToolsTcxProgramThatDrops) {
  if (!kernelFeatures().tcx)
    GTEST_SKIP() << "no TCX on this kernel";
  ForeignProgram drop(kBpfDir + "/tcx_drop.bpf.o");
  {
    auto guard = receiver_->enter();
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = kBpfFBefore);
    int link = bpf_link_create(drop.fd(), ifindex_, kBpfTcxIngress, &opts);
    ASSERT_GE(link, 0) << std::strerror(errno);
    drop.setLink(link);
  }
  auto [chain, attachment] = openAndAttach(Hook::TcIngress);
  ASSERT_EQ(attachment.mode(), AttachMode::Link);
  ASSERT_TRUE(chain.apply(std::vector<ProgramSpec>{counterSpec("a", Hook::TcIngress)}).ok());
  auto before = attachment.programsBefore();
  ASSERT_TRUE(before.ok()) << before.error().message();
  EXPECT_TRUE(before->empty()) << "programs run before the chain: " << before->size();

  // The other tool drops every packet, after the chain counted it.
  traffic_->sendAndWait(100, 500);
  EXPECT_EQ(traffic_->received(), 0u);
  EXPECT_GT(traffic_->sent(), 0u);
  EXPECT_EQ(counted(chain, "a"), traffic_->sent());
  ASSERT_TRUE(attachment.detach().ok());

  // Asked to go last, it runs after the other tool's program, and says so.
  AttachOptions last;
  last.tcxLast = true;
  auto guard = receiver_->enter();
  auto behind = Attachment::attach(chain.rootFd(), ifindex_, Hook::TcIngress,
                                   chainDir(Hook::TcIngress) + "/link", last);
  ASSERT_TRUE(behind.ok()) << behind.error().message();
  before = behind->programsBefore();
  ASSERT_TRUE(before.ok()) << before.error().message();
  EXPECT_EQ(*before, std::vector<uint32_t>{drop.id()});
  ASSERT_TRUE(behind->detach().ok());
}

TEST_F(ChainOnVeth, AnInterfaceWhoseXdpAnotherToolOwnsIsAClearFailure) {
  ForeignProgram other(kBpfDir + "/versioned.bpf.o");
  ASSERT_NE(other.id(), 0u);
  auto guard = receiver_->enter();
  ASSERT_EQ(bpf_xdp_attach(ifindex_, other.fd(), 0, nullptr), 0) << std::strerror(errno);
  auto chain = Chain::open(chainDir(), Hook::Xdp);
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  for (bool legacy : {false, true}) {
    AttachOptions options;
    options.legacy = legacy;
    auto attached =
        Attachment::attach(chain->rootFd(), ifindex_, Hook::Xdp, chainDir() + "/link", options);
    ASSERT_FALSE(attached.ok()) << "attached over another tool's XDP program";
    EXPECT_NE(attached.error().message().find("the interface already runs XDP program id " +
                                              std::to_string(other.id()) +
                                              " that bpfchain did not attach; it is not replaced"),
              std::string::npos)
        << attached.error().message();
  }
  // Still the other tool's.
  __u32 id = 0;
  ASSERT_EQ(bpf_xdp_query_id(ifindex_, 0, &id), 0);
  EXPECT_EQ(id, other.id());
  ASSERT_EQ(bpf_xdp_detach(ifindex_, 0, nullptr), 0);
}

struct HookCase {
  Hook hook;
  bool legacy;
};

class ChainOnEveryHook : public ChainOnVeth, public ::testing::WithParamInterface<HookCase> {};

TEST_P(ChainOnEveryHook, CountsTrafficAndDetachesCleanly) {
  auto [hook, legacy] = GetParam();
  auto [chain, attachment] = openAndAttach(hook, {.legacy = legacy});
  EXPECT_EQ(attachment.mode(), legacy ? AttachMode::Legacy : AttachMode::Link);
  std::vector<ProgramSpec> specs{counterSpec("a", hook), counterSpec("b", hook)};
  ASSERT_TRUE(chain.apply(specs).ok());
  traffic_->sendAndWait(200);
  EXPECT_EQ(traffic_->received(), 200u);
  EXPECT_EQ(counted(chain, "a"), 200u);
  EXPECT_EQ(counted(chain, "b"), 200u);

  auto guard = hookNetns(hook).enter();
  auto adopted = Attachment::adopt(chain.rootId(), hookIfindex(hook), hook,
                                   chainDir(hook) + "/link", {.legacy = legacy});
  ASSERT_TRUE(adopted.ok() && adopted->has_value());
  ASSERT_TRUE(attachment.detach().ok());
  auto gone = Attachment::adopt(chain.rootId(), hookIfindex(hook), hook, chainDir(hook) + "/link",
                                {.legacy = legacy});
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  ASSERT_TRUE(chain.destroy().ok());
}

INSTANTIATE_TEST_SUITE_P(Hooks, ChainOnEveryHook,
                         ::testing::Values(HookCase{Hook::Xdp, false}, HookCase{Hook::Xdp, true},
                                           HookCase{Hook::TcIngress, false},
                                           HookCase{Hook::TcIngress, true},
                                           HookCase{Hook::TcEgress, false},
                                           HookCase{Hook::TcEgress, true}),
                         [](const auto& info) {
                           std::string name(hookName(info.param.hook));
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name + (info.param.legacy ? "Legacy" : "Link");
                         });

} // namespace
} // namespace bpfchain::dataplane
