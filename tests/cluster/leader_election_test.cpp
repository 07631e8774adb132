// Leader election and the Event recorder (common/k8s) against the real kube-apiserver of the
// test bed. Electors in this process and in processes of their own compete for one Lease;
// leaders stop cleanly, are SIGKILLed, have their Lease taken, and are cut off from the API
// server by a proxy that stops moving bytes. Handover and takeover times are printed with the
// durations used; bounds are derived from client-go's algorithm (see takeoverBound).
#include <arpa/inet.h>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <regex>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "harness/control_plane.h"
#include "k8s/event_recorder.h"
#include "k8s/leader_election.h"

extern char** environ; // posix_spawn's envp

namespace bpfchain::k8s {
namespace {

using namespace std::chrono_literals;
using testing::ControlPlaneEnvironment;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new testing::ControlPlaneEnvironment);

const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
constexpr const char* kNamespace = "default";

struct Timing {
  const char* name;
  milliseconds leaseDuration;
  milliseconds renewDeadline;
  milliseconds retryPeriod;
};
constexpr Timing kShort{"short 3s/2s/0.5s", 3000ms, 2000ms, 500ms};
constexpr Timing kDefaults{"defaults 15s/10s/2s", 15000ms, 10000ms, 2000ms};

// The longest gap between two acquire attempts: wait.Jitter(RetryPeriod, 1.2).
milliseconds maxAttemptGap(const Timing& t) {
  return milliseconds(
      static_cast<int64_t>(t.retryPeriod.count() * (1.0 + kLeaderElectionJitterFactor)));
}

// After the leader dies, a follower sees its last renewal at its next attempt at the latest (one
// attempt gap), and takes over at its first attempt once LeaseDuration has passed since (one more
// gap): LeaseDuration + 2 * RetryPeriod * (1 + JitterFactor). The earliest is LeaseDuration after
// the last renewal, which was at most RetryPeriod before the death.
milliseconds takeoverBound(const Timing& t) {
  return t.leaseDuration + 2 * maxAttemptGap(t);
}
milliseconds takeoverFloor(const Timing& t) {
  return t.leaseDuration - t.retryPeriod;
}

// What client-go's documentation suggests as the bound; printed next to the measurements.
milliseconds naiveBound(const Timing& t) {
  return t.leaseDuration +
         milliseconds(static_cast<int64_t>(t.retryPeriod.count() * kLeaderElectionJitterFactor));
}

// A little for request round trips and scheduling (a renewal round that fails may have started
// its first attempt a round trip before the disruption).
constexpr milliseconds kSlack = 300ms;

int64_t msOf(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}
double seconds(milliseconds d) {
  return static_cast<double>(d.count()) / 1000.0;
}
double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string uniqueName(const std::string& tag) {
  static int counter = 0;
  return "le-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

Config kubeConfig() {
  auto config = loadKubeconfig(ControlPlaneEnvironment::get().kubeconfig());
  if (!config) {
    ADD_FAILURE() << config.error().message();
    return {};
  }
  return *config;
}

std::shared_ptr<Client> newClient(const Config& config) {
  auto client = Client::create(config);
  if (!client) {
    ADD_FAILURE() << client.error().message();
    return nullptr;
  }
  return std::shared_ptr<Client>(std::move(*client));
}

// Polls `condition` every 10 ms until it holds or `timeout` passes.
template <typename F> bool eventually(F condition, Clock::duration timeout) {
  for (auto end = Clock::now() + timeout;; std::this_thread::sleep_for(10ms)) {
    if (condition())
      return true;
    if (Clock::now() >= end)
      return false;
  }
}

// A LeaderElector running on a thread of this process; remembers when its callbacks fired.
class Elector {
public:
  static std::unique_ptr<Elector> start(Client& client, const std::string& lease,
                                        const std::string& identity, const Timing& t) {
    auto self = std::unique_ptr<Elector>(new Elector(identity));
    Elector* e = self.get();
    LeaderElectionConfig config{.leaseNamespace = kNamespace,
                                .leaseName = lease,
                                .identity = identity,
                                .leaseDuration = t.leaseDuration,
                                .renewDeadline = t.renewDeadline,
                                .retryPeriod = t.retryPeriod};
    auto created = LeaderElector::create(
        client, config,
        {.onStartedLeading = [e](const std::stop_token&) { e->mark(e->started_); },
         .onStoppedLeading = [e] { e->mark(e->stopped_); },
         .onNewLeader =
             [e](const std::string& holder) {
               std::lock_guard lock(e->mutex_);
               e->leaders_.push_back(holder);
             }});
    if (!created) {
      ADD_FAILURE() << created.error().message();
      return nullptr;
    }
    e->elector_ = std::move(*created);
    e->thread_ = std::thread([e] {
      ElectionEnd end = e->elector_->run();
      std::lock_guard lock(e->mutex_);
      e->end_ = end;
      e->changed_.notify_all();
    });
    return self;
  }

  ~Elector() {
    if (elector_)
      elector_->stop();
    if (thread_.joinable())
      thread_.join();
  }

  const std::string& identity() const { return identity_; }
  LeaderElector& elector() { return *elector_; }
  bool isLeader() const { return elector_->isLeader(); }
  void stop() { elector_->stop(); }

  std::optional<Clock::time_point> waitStarted(Clock::duration timeout) {
    return waitFor(started_, timeout);
  }
  std::optional<Clock::time_point> waitStopped(Clock::duration timeout) {
    return waitFor(stopped_, timeout);
  }
  std::optional<Clock::time_point> started() {
    std::lock_guard lock(mutex_);
    return started_;
  }
  std::optional<ElectionEnd> waitEnd(Clock::duration timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return end_.has_value(); });
    return end_;
  }
  std::vector<std::string> leaders() {
    std::lock_guard lock(mutex_);
    return leaders_;
  }

private:
  explicit Elector(std::string identity) : identity_(std::move(identity)) {}

  void mark(std::optional<Clock::time_point>& when) {
    std::lock_guard lock(mutex_);
    when = Clock::now();
    changed_.notify_all();
  }
  std::optional<Clock::time_point> waitFor(std::optional<Clock::time_point>& when,
                                           Clock::duration timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return when.has_value(); });
    return when;
  }

  std::string identity_;
  std::unique_ptr<LeaderElector> elector_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<Clock::time_point> started_, stopped_;
  std::optional<ElectionEnd> end_;
  std::vector<std::string> leaders_;
};

// bpfchain-test-leader-candidate in a process of its own, its stdout read line by line.
class CandidateProcess {
public:
  static std::unique_ptr<CandidateProcess> spawn(const std::string& identity,
                                                 const std::string& lease, const Timing& t) {
    std::vector<std::string> args{BPFCHAIN_LEADER_CANDIDATE,
                                  "--kubeconfig",
                                  ControlPlaneEnvironment::get().kubeconfig(),
                                  "--identity",
                                  identity,
                                  "--lease",
                                  lease,
                                  "--lease-duration",
                                  std::to_string(seconds(t.leaseDuration)),
                                  "--renew-deadline",
                                  std::to_string(seconds(t.renewDeadline)),
                                  "--retry-period",
                                  std::to_string(seconds(t.retryPeriod))};
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2 failed";
      return nullptr;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      ADD_FAILURE() << "spawn " << argv[0] << ": " << std::strerror(rc);
      return nullptr;
    }
    auto self = std::unique_ptr<CandidateProcess>(new CandidateProcess(identity, pid, out[0]));
    CandidateProcess* p = self.get();
    p->reader_ = std::thread([p] { p->readLines(); });
    // Until then a SIGTERM kills it instead of stopping it.
    EXPECT_TRUE(p->waitFor("ready", 10s)) << identity << " did not start";
    return self;
  }

  ~CandidateProcess() {
    if (status_ < 0) {
      ::kill(pid_, SIGKILL);
      reap(Clock::now() + 10s);
    }
    if (reader_.joinable())
      reader_.join();
    ::close(fd_);
  }

  const std::string& identity() const { return identity_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  // The number after `word` in its first line "word <number>", waiting up to `timeout`.
  std::optional<int64_t> waitFor(const std::string& word, Clock::duration timeout) {
    std::unique_lock lock(mutex_);
    std::optional<int64_t> found;
    changed_.wait_for(lock, timeout, [&] {
      for (const auto& line : lines_)
        if (line.rfind(word + " ", 0) == 0) {
          found = std::stoll(line.substr(word.size() + 1));
          return true;
        }
      return eof_;
    });
    return found;
  }
  bool said(const std::string& prefix) {
    std::lock_guard lock(mutex_);
    for (const auto& line : lines_)
      if (line.rfind(prefix, 0) == 0)
        return true;
    return false;
  }
  // The exit status (128 + signal when killed), or nullopt when it is still running.
  std::optional<int> reap(Clock::time_point until) {
    while (status_ < 0) {
      int raw = 0;
      pid_t r = ::waitpid(pid_, &raw, WNOHANG);
      if (r == pid_)
        status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      else if (Clock::now() >= until)
        return std::nullopt;
      else
        std::this_thread::sleep_for(10ms);
    }
    return status_;
  }

private:
  CandidateProcess(std::string identity, pid_t pid, int fd)
      : identity_(std::move(identity)), pid_(pid), fd_(fd) {}

  void readLines() {
    std::string partial;
    char buf[512];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      std::lock_guard lock(mutex_);
      if (n <= 0) {
        eof_ = true;
        changed_.notify_all();
        return;
      }
      partial.append(buf, static_cast<size_t>(n));
      for (size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1))
        lines_.push_back(partial.substr(0, nl));
      changed_.notify_all();
    }
  }

  std::string identity_;
  pid_t pid_;
  int fd_;
  int status_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

// Forwards loopback TCP connections to the API server until freeze(); then it moves no more
// bytes and accepts no more connections, so requests hang as they do across a network partition.
// Destroying it closes every connection, which ends the requests still hanging.
class TcpProxy {
public:
  static std::unique_ptr<TcpProxy> start(int targetPort) {
    auto self = std::unique_ptr<TcpProxy>(new TcpProxy(targetPort));
    self->listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (self->listen_ < 0 || ::bind(self->listen_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(self->listen_, 64) != 0 ||
        ::getsockname(self->listen_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        ::pipe2(self->wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      ADD_FAILURE() << "proxy: " << std::strerror(errno);
      return nullptr;
    }
    self->port_ = ntohs(addr.sin_port);
    TcpProxy* p = self.get();
    p->thread_ = std::thread([p] { p->loop(); });
    return self;
  }

  ~TcpProxy() {
    done_ = true;
    wake();
    if (thread_.joinable())
      thread_.join();
    for (auto [client, server] : pairs_) {
      ::close(client);
      ::close(server);
    }
    for (int fd : {listen_, wake_[0], wake_[1]})
      if (fd >= 0)
        ::close(fd);
  }

  int port() const { return port_; }
  void freeze() {
    frozen_ = true;
    wake();
  }

private:
  explicit TcpProxy(int targetPort) : target_(targetPort) {}

  void wake() const {
    char byte = 0;
    (void)!::write(wake_[1], &byte, 1);
  }

  int connectTarget() const {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(target_));
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return fd;
    if (fd >= 0)
      ::close(fd);
    return -1;
  }

  static bool copy(int from, int to) {
    char buf[16384];
    ssize_t n = ::read(from, buf, sizeof buf);
    for (ssize_t off = 0; n > 0 && off < n;) {
      ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
      if (w <= 0)
        return false;
      off += w;
    }
    return n > 0;
  }

  void loop() {
    while (!done_) {
      std::vector<pollfd> fds{{wake_[0], POLLIN, 0}};
      if (!frozen_) {
        fds.push_back({listen_, POLLIN, 0});
        for (auto [client, server] : pairs_) {
          fds.push_back({client, POLLIN, 0});
          fds.push_back({server, POLLIN, 0});
        }
      }
      if (::poll(fds.data(), fds.size(), -1) < 0)
        continue;
      char drain[64];
      while (::read(wake_[0], drain, sizeof drain) > 0) {
      }
      if (frozen_ || done_)
        continue;
      std::vector<std::pair<int, int>> kept;
      for (size_t i = 0; i < pairs_.size(); ++i) {
        auto [client, server] = pairs_[i];
        const pollfd& c = fds[2 + 2 * i];
        const pollfd& s = fds[3 + 2 * i];
        bool open = true;
        if (c.revents != 0)
          open = copy(client, server);
        if (open && s.revents != 0)
          open = copy(server, client);
        if (open) {
          kept.emplace_back(client, server);
        } else {
          ::close(client);
          ::close(server);
        }
      }
      pairs_ = std::move(kept);
      if (fds[1].revents & POLLIN) {
        int client = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        int server = client >= 0 ? connectTarget() : -1;
        if (server >= 0)
          pairs_.emplace_back(client, server);
        else if (client >= 0)
          ::close(client);
      }
    }
  }

  int target_;
  int port_ = 0;
  int listen_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> frozen_{false}, done_{false};
  std::thread thread_;
  std::vector<std::pair<int, int>> pairs_; // only the proxy thread, until it is joined
};

int apiServerPort(const Config& config) {
  return std::stoi(config.server.substr(config.server.rfind(':') + 1));
}

const std::regex kMicroTime(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$)");
const std::regex kTime(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)");

int64_t integerAt(const Json& obj, const char* a, const char* b) {
  return obj.at(a).at(b).as_number().to_int64();
}

class LeaderElection : public ::testing::Test {
protected:
  void SetUp() override {
    config_ = kubeConfig();
    client_ = newClient(config_);
    ASSERT_TRUE(client_);
  }

  Json lease(const std::string& name) {
    auto got = client_->get(resources::kLeases, kNamespace, name);
    EXPECT_TRUE(got.ok()) << got.error().describe();
    return got ? *got : Json::object();
  }

  Config config_;
  std::shared_ptr<Client> client_;
};

TEST_F(LeaderElection, ConfigIsValidatedAsClientGoDoes) {
  LeaderCallbacks callbacks{.onStartedLeading = [](const std::stop_token&) {},
                            .onStoppedLeading = [] {},
                            .onNewLeader = nullptr};
  auto make = [&](milliseconds ld, milliseconds rd, milliseconds rp) {
    return LeaderElector::create(*client_,
                                 {.leaseNamespace = kNamespace,
                                  .leaseName = "validated",
                                  .identity = "me",
                                  .leaseDuration = ld,
                                  .renewDeadline = rd,
                                  .retryPeriod = rp},
                                 callbacks);
  };
  EXPECT_TRUE(make(15s, 10s, 2s).ok());
  EXPECT_TRUE(make(3s, 2s, 500ms).ok());
  EXPECT_FALSE(make(10s, 10s, 2s).ok());    // LeaseDuration > RenewDeadline
  EXPECT_FALSE(make(15s, 2400ms, 2s).ok()); // RenewDeadline > 1.2 * RetryPeriod
  EXPECT_TRUE(make(15s, 2401ms, 2s).ok());
  EXPECT_FALSE(make(15s, 10s, 0ms).ok());
  EXPECT_FALSE(make(900ms, 500ms, 100ms).ok()); // the Lease holds whole seconds

  auto defaults = LeaderElector::create(
      *client_, {.leaseNamespace = kNamespace, .leaseName = "validated", .identity = "me"},
      callbacks);
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ((*defaults)->config().leaseDuration, 15s);
  EXPECT_EQ((*defaults)->config().renewDeadline, 10s);
  EXPECT_EQ((*defaults)->config().retryPeriod, 2s);
  EXPECT_FALSE(LeaderElector::create(*client_, {.leaseNamespace = kNamespace, .leaseName = "x"},
                                     callbacks)
                   .ok()); // no identity
  EXPECT_FALSE(LeaderElector::create(
                   *client_, {.leaseNamespace = kNamespace, .leaseName = "x", .identity = "me"}, {})
                   .ok()); // no callbacks
}

TEST_F(LeaderElection, MicroTimeHasMicrosecondsAndZ) {
  auto t = std::chrono::system_clock::time_point(1234567890123456us);
  EXPECT_EQ(formatMicroTime(t), "2009-02-13T23:31:30.123456Z");
  EXPECT_EQ(formatMicroTime(std::chrono::system_clock::time_point(5us)),
            "1970-01-01T00:00:00.000005Z");
}

// Two electors of this process on one Lease: one leads, the Lease names it, and a clean stop
// hands over at the other's next attempt instead of after LeaseDuration.
TEST_F(LeaderElection, OneOfTwoLeadsAndACleanStopHandsOverAtOnce) {
  for (const Timing& t : {kShort, kDefaults}) {
    SCOPED_TRACE(t.name);
    const std::string name = uniqueName("handover");
    auto a = Elector::start(*client_, name, "alpha", t);
    auto b = Elector::start(*client_, name, "bravo", t);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(eventually([&] { return a->started() || b->started(); }, takeoverBound(t)));
    Elector& leader = a->started() ? *a : *b;
    Elector& follower = a->started() ? *b : *a;

    // Exactly one leads, for a while (several renewals and attempts).
    auto until = Clock::now() + std::max<Clock::duration>(3 * maxAttemptGap(t), 2s);
    int samples = 0;
    while (Clock::now() < until) {
      bool l = leader.isLeader();
      bool f = follower.isLeader();
      ASSERT_TRUE(l && !f) << "sample " << samples << ": " << leader.identity() << "=" << l << " "
                           << follower.identity() << "=" << f;
      ++samples;
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_FALSE(follower.started());
    EXPECT_EQ(follower.elector().leader(), leader.identity());

    Json held = lease(name);
    EXPECT_EQ(stringAt(held, {"spec", "holderIdentity"}), leader.identity());
    EXPECT_EQ(integerAt(held, "spec", "leaseDurationSeconds"),
              std::chrono::duration_cast<std::chrono::seconds>(t.leaseDuration).count());
    EXPECT_EQ(integerAt(held, "spec", "leaseTransitions"), 0);
    EXPECT_TRUE(std::regex_match(stringAt(held, {"spec", "renewTime"}), kMicroTime))
        << held.serialize();
    EXPECT_TRUE(std::regex_match(stringAt(held, {"spec", "acquireTime"}), kMicroTime));
    // Renewals keep acquireTime.
    std::this_thread::sleep_for(t.retryPeriod * 2);
    Json renewed = lease(name);
    EXPECT_EQ(stringAt(renewed, {"spec", "acquireTime"}), stringAt(held, {"spec", "acquireTime"}));
    EXPECT_NE(stringAt(renewed, {"spec", "renewTime"}), stringAt(held, {"spec", "renewTime"}));

    const Clock::time_point stopAt = Clock::now();
    leader.stop();
    auto took = follower.waitStarted(maxAttemptGap(t) + 5s);
    ASSERT_TRUE(took) << follower.elector().lastError();
    auto stopped = leader.waitStopped(0s);
    ASSERT_TRUE(stopped);
    std::printf("[ timing   ] in-process handover after a clean stop, %s: %.3f s "
                "(bound RetryPeriod*(1+JitterFactor) = %.1f s, LeaseDuration %.0f s)\n",
                t.name, seconds(*took - stopAt), seconds(maxAttemptGap(t)),
                seconds(t.leaseDuration));
    EXPECT_LE(*took - stopAt, maxAttemptGap(t) + kSlack);
    EXPECT_LT(*stopped, *took) << "the old leader stops before the new one starts";
    EXPECT_EQ(leader.waitEnd(t.renewDeadline + 1s), ElectionEnd::Stopped);

    Json taken = lease(name);
    EXPECT_EQ(stringAt(taken, {"spec", "holderIdentity"}), follower.identity());
    EXPECT_EQ(integerAt(taken, "spec", "leaseTransitions"), 1);
    auto seen = follower.leaders();
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.front(), leader.identity());
    EXPECT_EQ(seen.back(), follower.identity());

    // The last one releases too: an empty holder and a one-second lease.
    follower.stop();
    EXPECT_EQ(follower.waitEnd(t.renewDeadline + 1s), ElectionEnd::Stopped);
    Json released = lease(name);
    EXPECT_EQ(stringAt(released, {"spec", "holderIdentity"}), "");
    EXPECT_EQ(integerAt(released, "spec", "leaseDurationSeconds"), 1);
    EXPECT_EQ(integerAt(released, "spec", "leaseTransitions"), 1);
  }
}

// Candidates in processes of their own; the leader is SIGKILLed (no release), so a follower
// takes over only once the lease has expired on its own clock.
void killTheLeaderRounds(const Timing& t, int rounds, Client& client) {
  SCOPED_TRACE(t.name);
  const std::string name = uniqueName("killed");
  std::map<std::string, std::unique_ptr<CandidateProcess>> candidates;
  int next = 0;
  auto add = [&] {
    std::string identity = "candidate-" + std::to_string(next++);
    candidates[identity] = CandidateProcess::spawn(identity, name, t);
    return candidates[identity] != nullptr;
  };
  ASSERT_TRUE(add() && add());

  std::string leaderId;
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& [id, c] : candidates)
          if (c->said("leading "))
            leaderId = id;
        return !leaderId.empty();
      },
      takeoverBound(t) + 10s))
      << "nobody leads";
  std::vector<double> takeovers;
  for (int round = 0; round < rounds; ++round) {
    // Exactly one leads, through several attempts of the others.
    std::this_thread::sleep_for(2 * maxAttemptGap(t));
    for (auto& [id, c] : candidates)
      EXPECT_EQ(c->said("leading "), id == leaderId) << id;
    auto held = client.get(resources::kLeases, kNamespace, name);
    ASSERT_TRUE(held.ok()) << held.error().describe();
    EXPECT_EQ(stringAt(*held, {"spec", "holderIdentity"}), leaderId);

    const int64_t killedAt = msOf(Clock::now());
    candidates[leaderId]->signal(SIGKILL);
    EXPECT_EQ(candidates[leaderId]->reap(Clock::now() + 5s), 128 + SIGKILL);
    candidates.erase(leaderId);

    ASSERT_EQ(candidates.size(), 1u); // one follower per round; a new one joins below
    const std::string successor = candidates.begin()->first;
    std::optional<int64_t> leadingAt =
        candidates.begin()->second->waitFor("leading", takeoverBound(t) + 2s);
    ASSERT_TRUE(leadingAt) << successor << " did not take over";
    const milliseconds took(*leadingAt - killedAt);
    takeovers.push_back(seconds(took));
    std::printf("[ timing   ] process takeover after SIGKILL of the leader, %s, round %d: %.3f s "
                "(algorithm's bounds [%.1f, %.1f] s; LeaseDuration+RetryPeriod*JitterFactor = "
                "%.1f s)\n",
                t.name, round + 1, seconds(took), seconds(takeoverFloor(t)),
                seconds(takeoverBound(t)), seconds(naiveBound(t)));
    std::fflush(stdout);
    EXPECT_GE(took, takeoverFloor(t) - kSlack) << "took over before the lease expired";
    EXPECT_LE(took, takeoverBound(t) + kSlack);
    auto taken = client.get(resources::kLeases, kNamespace, name);
    ASSERT_TRUE(taken.ok());
    EXPECT_EQ(stringAt(*taken, {"spec", "holderIdentity"}), successor);
    EXPECT_EQ(integerAt(*taken, "spec", "leaseTransitions"), round + 1);
    leaderId = successor;
    ASSERT_TRUE(add());
  }

  // SIGTERM: the follower exits without ever leading, then the leader stops and releases (in
  // that order, or the follower would take the released Lease).
  auto order = std::vector<std::string>{};
  for (auto& [id, c] : candidates)
    if (id != leaderId)
      order.push_back(id);
  order.push_back(leaderId);
  for (const std::string& id : order) {
    auto& c = candidates.at(id);
    c->signal(SIGTERM);
    EXPECT_EQ(c->reap(Clock::now() + t.renewDeadline + 5s), 0) << id;
    EXPECT_TRUE(c->said("exit stopped")) << id;
    EXPECT_EQ(c->said("stopped "), id == leaderId) << id;
  }
  auto released = client.get(resources::kLeases, kNamespace, name);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(stringAt(*released, {"spec", "holderIdentity"}), "");
  EXPECT_EQ(integerAt(*released, "spec", "leaseDurationSeconds"), 1);
}

TEST_F(LeaderElection, ProcessesTakeOverWhenTheLeaderIsKilledShortDurations) {
  killTheLeaderRounds(kShort, 3, *client_);
}

TEST_F(LeaderElection, ProcessesTakeOverWhenTheLeaderIsKilledDefaultDurations) {
  killTheLeaderRounds(kDefaults, 1, *client_);
}

// Another holder writes the Lease (a takeover this leader did not see coming): the fast path's
// PUT conflicts, the slow path finds a valid lease held by someone else, and after RenewDeadline
// without a renewal the leader steps down. Its release leaves the other holder's record alone.
TEST_F(LeaderElection, LeaderStepsDownWhenAnotherHolderTakesTheLease) {
  const Timing t = kShort;
  const std::string name = uniqueName("usurped");
  auto a = Elector::start(*client_, name, "alpha", t);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->waitStarted(5s)) << a->elector().lastError();
  std::this_thread::sleep_for(t.retryPeriod * 2);

  Clock::time_point takenAt;
  auto taken = retryOnConflict<Json>([&]() -> ApiResult<Json> {
    auto current = client_->get(resources::kLeases, kNamespace, name);
    if (!current)
      return current;
    Json usurped = *current;
    std::string now = formatMicroTime(std::chrono::system_clock::now());
    usurped["spec"]["holderIdentity"] = Json::string("usurper");
    usurped["spec"]["leaseDurationSeconds"] = Json::number(30);
    usurped["spec"]["acquireTime"] = Json::string(now);
    usurped["spec"]["renewTime"] = Json::string(now);
    usurped["spec"]["leaseTransitions"] = Json::number(7);
    takenAt = Clock::now();
    return client_->update(resources::kLeases, usurped);
  });
  ASSERT_TRUE(taken.ok()) << taken.error().describe();

  // isLeader() turns false at the first renewal that sees the other holder...
  ASSERT_TRUE(eventually([&] { return !a->isLeader(); }, t.retryPeriod + 1s));
  const Clock::duration notLeader = Clock::now() - takenAt;
  // ...and onStoppedLeading comes once renewals have failed for RenewDeadline.
  auto stopped = a->waitStopped(t.renewDeadline + t.retryPeriod + 2s);
  ASSERT_TRUE(stopped);
  std::printf("[ timing   ] %s: isLeader() false after %.3f s, stepped down after %.3f s "
              "(RenewDeadline %.1f s, RetryPeriod %.1f s)\n",
              t.name, seconds(notLeader), seconds(*stopped - takenAt), seconds(t.renewDeadline),
              seconds(t.retryPeriod));
  EXPECT_LE(notLeader, t.retryPeriod + kSlack);
  EXPECT_GE(*stopped - takenAt, t.renewDeadline - kSlack);
  EXPECT_LE(*stopped - takenAt, t.renewDeadline + t.retryPeriod + kSlack);
  EXPECT_EQ(a->waitEnd(t.renewDeadline + 1s), ElectionEnd::LostLeadership);
  auto seen = a->leaders();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), "usurper");

  Json after = lease(name);
  EXPECT_EQ(stringAt(after, {"spec", "holderIdentity"}), "usurper");
  EXPECT_EQ(integerAt(after, "spec", "leaseTransitions"), 7);
}

// A leader cut off from the API server (its requests hang; the client's own timeout is 30 s)
// steps down within RenewDeadline, before a follower that still reaches the server takes over.
TEST_F(LeaderElection, LeaderStepsDownWhenTheApiServerStopsAnswering) {
  const Timing t = kShort;
  const std::string name = uniqueName("partitioned");
  auto proxy = TcpProxy::start(apiServerPort(config_));
  ASSERT_TRUE(proxy);
  Config viaProxy = config_;
  viaProxy.server = "https://127.0.0.1:" + std::to_string(proxy->port());
  auto cutOff = newClient(viaProxy);
  ASSERT_TRUE(cutOff);

  auto a = Elector::start(*cutOff, name, "alpha", t);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->waitStarted(5s)) << a->elector().lastError();
  auto b = Elector::start(*client_, name, "bravo", t);
  ASSERT_TRUE(b);
  std::this_thread::sleep_for(2 * maxAttemptGap(t));
  ASSERT_FALSE(b->started());

  const Clock::time_point frozenAt = Clock::now();
  proxy->freeze();
  auto stopped = a->waitStopped(t.renewDeadline + t.retryPeriod + 2s);
  ASSERT_TRUE(stopped);
  EXPECT_FALSE(a->isLeader());
  auto took = b->waitStarted(takeoverBound(t) + 2s);
  ASSERT_TRUE(took) << b->elector().lastError();
  std::printf("[ timing   ] %s, API server unreachable: the leader stepped down after %.3f s, "
              "the follower took over after %.3f s\n",
              t.name, seconds(*stopped - frozenAt), seconds(*took - frozenAt));
  EXPECT_GE(*stopped - frozenAt, t.renewDeadline - kSlack);
  EXPECT_LE(*stopped - frozenAt, t.renewDeadline + t.retryPeriod + kSlack);
  EXPECT_LT(*stopped, *took) << "two leaders at once";
  // The release cannot reach the server either; it gives up at RenewDeadline.
  EXPECT_EQ(a->waitEnd(t.renewDeadline + 2s), ElectionEnd::LostLeadership);
  EXPECT_EQ(stringAt(lease(name), {"spec", "holderIdentity"}), "bravo");
  b->stop();
  EXPECT_EQ(b->waitEnd(t.renewDeadline + 1s), ElectionEnd::Stopped);
  proxy.reset(); // closes the connections: the abandoned requests end now, and ~Elector with them
}

class EventRecorderTest : public LeaderElection {
protected:
  Json configMap(const std::string& name) {
    Json cm = Json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{}})");
    cm["metadata"]["name"] = Json::string(name);
    cm["metadata"]["namespace"] = Json::string(kNamespace);
    auto created = client_->create(kConfigMaps, cm);
    EXPECT_TRUE(created.ok()) << created.error().describe();
    return created ? *created : cm;
  }

  std::vector<Json> eventsAbout(const std::string& ns, const std::string& name) {
    auto list =
        client_->list(resources::kEvents, ns, {.fieldSelector = "involvedObject.name=" + name});
    EXPECT_TRUE(list.ok()) << list.error().describe();
    return list ? list->items : std::vector<Json>{};
  }
};

TEST_F(EventRecorderTest, RecordsAnEventWithTheObjectsReference) {
  Json cm = configMap(uniqueName("events"));
  EventRecorder recorder(*client_, {.component = "bpfchain-test", .host = "node-1"});
  auto recorded = recorder.record(cm, EventType::Normal, "ChainApplied", "chain web applied");
  ASSERT_TRUE(recorded.ok()) << recorded.error().describe();

  auto events = eventsAbout(kNamespace, nameOf(cm));
  ASSERT_EQ(events.size(), 1u);
  const Json& e = events[0];
  EXPECT_EQ(namespaceOf(e), kNamespace);
  EXPECT_EQ(nameOf(e), nameOf(*recorded));
  EXPECT_EQ(nameOf(e).rfind(nameOf(cm) + ".", 0), 0u) << nameOf(e);
  EXPECT_EQ(stringAt(e, {"involvedObject", "apiVersion"}), "v1");
  EXPECT_EQ(stringAt(e, {"involvedObject", "kind"}), "ConfigMap");
  EXPECT_EQ(stringAt(e, {"involvedObject", "name"}), nameOf(cm));
  EXPECT_EQ(stringAt(e, {"involvedObject", "namespace"}), kNamespace);
  EXPECT_EQ(stringAt(e, {"involvedObject", "uid"}), metadataString(cm, "uid"));
  EXPECT_FALSE(metadataString(cm, "uid").empty());
  EXPECT_EQ(stringAt(e, {"type"}), "Normal");
  EXPECT_EQ(stringAt(e, {"reason"}), "ChainApplied");
  EXPECT_EQ(stringAt(e, {"message"}), "chain web applied");
  EXPECT_EQ(stringAt(e, {"source", "component"}), "bpfchain-test");
  EXPECT_EQ(stringAt(e, {"source", "host"}), "node-1");
  EXPECT_EQ(e.at("count").as_integer(), 1);
  EXPECT_TRUE(std::regex_match(stringAt(e, {"firstTimestamp"}), kTime)) << e.serialize();
  EXPECT_EQ(stringAt(e, {"firstTimestamp"}), stringAt(e, {"lastTimestamp"}));
}

TEST_F(EventRecorderTest, RepeatsWithinTenMinutesAreOneEventWithACount) {
  Json cm = configMap(uniqueName("repeats"));
  EventRecorder recorder(*client_, {.component = "bpfchain-test"});
  for (int i = 0; i < 5; ++i) {
    auto r = recorder.record(cm, EventType::Warning, "AttachFailed", "eth0: device busy");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->at("count").as_integer(), i + 1);
    if (i == 2)
      std::this_thread::sleep_for(1100ms); // so that lastTimestamp moves on
  }
  // A different message or type is another Event.
  ASSERT_TRUE(recorder.record(cm, EventType::Warning, "AttachFailed", "eth1: device busy").ok());
  ASSERT_TRUE(recorder.record(cm, EventType::Normal, "AttachFailed", "eth0: device busy").ok());

  auto events = eventsAbout(kNamespace, nameOf(cm));
  ASSERT_EQ(events.size(), 3u);
  int repeated = 0;
  for (const Json& e : events) {
    if (stringAt(e, {"message"}) != "eth0: device busy" || stringAt(e, {"type"}) != "Warning") {
      EXPECT_EQ(e.at("count").as_integer(), 1);
      continue;
    }
    ++repeated;
    EXPECT_EQ(e.at("count").as_integer(), 5);
    EXPECT_EQ(stringAt(e, {"reason"}), "AttachFailed");
    EXPECT_LT(stringAt(e, {"firstTimestamp"}), stringAt(e, {"lastTimestamp"}));
  }
  EXPECT_EQ(repeated, 1);

  // An Event deleted in between (as the server's TTL does) is written again, count carried on.
  auto one = eventsAbout(kNamespace, nameOf(cm));
  for (const Json& e : one) {
    if (e.at("count").as_integer() == 5) {
      ASSERT_TRUE(client_->remove(resources::kEvents, kNamespace, nameOf(e)).ok());
    }
  }
  auto again = recorder.record(cm, EventType::Warning, "AttachFailed", "eth0: device busy");
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->at("count").as_integer(), 6);
}

TEST_F(EventRecorderTest, ClusterScopedObjectsGetTheirEventsInDefault) {
  auto ns = client_->get(resources::kNamespaces, "", "kube-public");
  ASSERT_TRUE(ns.ok()) << ns.error().describe();
  EventRecorder recorder(*client_, {.component = "bpfchain-test"});
  std::string message = "seen by " + uniqueName("cluster-scoped");
  auto recorded = recorder.record(*ns, EventType::Normal, "Observed", message);
  ASSERT_TRUE(recorded.ok()) << recorded.error().describe();
  EXPECT_EQ(namespaceOf(*recorded), "default");
  bool found = false;
  for (const Json& e : eventsAbout("default", "kube-public")) {
    if (stringAt(e, {"message"}) != message)
      continue;
    found = true;
    EXPECT_EQ(stringAt(e, {"involvedObject", "kind"}), "Namespace");
    EXPECT_EQ(stringAt(e, {"involvedObject", "namespace"}), "");
  }
  EXPECT_TRUE(found);
}

TEST_F(EventRecorderTest, FailuresAreReturnedWithoutBlockingTheCaller) {
  Json cm = configMap(uniqueName("failures"));
  EventRecorder recorder(*client_, {.component = "bpfchain-test"});
  auto invalid = recorder.record(Json::object(), EventType::Normal, "Nothing", "no object");
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().status, 400);

  Config unreachable = config_;
  unreachable.server = "https://127.0.0.1:1";
  auto refusing = newClient(unreachable);
  ASSERT_TRUE(refusing);
  EventRecorder refused(*refusing, {.component = "bpfchain-test"});
  auto down = refused.record(cm, EventType::Normal, "Applied", "nobody listens");
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(down.error().transport()) << down.error().describe();

  // A server that stops answering: record() returns at its timeout.
  auto proxy = TcpProxy::start(apiServerPort(config_));
  ASSERT_TRUE(proxy);
  Config viaProxy = config_;
  viaProxy.server = "https://127.0.0.1:" + std::to_string(proxy->port());
  auto cutOff = newClient(viaProxy);
  ASSERT_TRUE(cutOff);
  EventRecorder hanging(*cutOff, {.component = "bpfchain-test", .timeout = 500ms});
  ASSERT_TRUE(hanging.record(cm, EventType::Normal, "Applied", "before").ok());
  proxy->freeze();
  for (int i = 0; i < 3; ++i) {
    const Clock::time_point start = Clock::now();
    auto hung = hanging.record(cm, EventType::Normal, "Applied", "after");
    const Clock::duration took = Clock::now() - start;
    ASSERT_FALSE(hung.ok());
    EXPECT_EQ(hung.error().reason, "Timeout") << hung.error().describe();
    EXPECT_LE(took, 500ms + kSlack);
  }
  proxy.reset(); // the hung writes fail now, so ~EventRecorder does not wait for them
}

} // namespace
} // namespace bpfchain::k8s
