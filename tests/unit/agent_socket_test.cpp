// The agent's CNI socket: framing, AgentClient against a real AgentSocketServer, and the limits
// that keep one end from hanging the other.
#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <mutex>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "agent_socket/agent_socket.h"
#include "harness/resources.h"
#include "system/fd.h"

namespace bpfchain::agent {
namespace {

using namespace std::chrono_literals;
using bpfchain::testing::TempDir;
using Clock = std::chrono::steady_clock;

// Stands in for the node agent: records what it was asked and answers from a template.
class TestHandler : public AgentHandler {
public:
  v1::Response attachPod(const v1::AttachPod& request) override {
    record(request.container_id());
    v1::Response response;
    response.set_ok(true);
    auto* chain = response.add_chains();
    chain->set_chain("edge-protect");
    chain->set_hook("tc-ingress");
    chain->set_generation(3);
    chain->set_root_program_id(41);
    chain->set_interface(request.host_ifname());
    return response;
  }
  v1::Response detachPod(const v1::DetachPod& request) override {
    record(request.container_id());
    v1::Response response;
    response.set_ok(true);
    return response;
  }
  v1::Response checkPod(const v1::CheckPod& request) override {
    record(request.container_id());
    v1::Response response;
    response.set_ok(false);
    response.set_reason("NotAttached");
    response.set_message("no chain on " + request.host_ifname());
    return response;
  }
  v1::Response status(const v1::StatusRequest& /*request*/) override {
    record("status");
    v1::Response response;
    response.set_ok(true);
    response.mutable_status()->set_ready(true);
    response.mutable_status()->set_agent_version("0.1.0");
    response.mutable_status()->set_node_name("node-1");
    return response;
  }
  v1::Response gc(const v1::GcRequest& request) override {
    record("gc");
    v1::Response response;
    response.set_ok(true);
    for (const auto& id : request.valid_container_ids())
      if (id != "keep")
        response.add_removed_container_ids(id);
    return response;
  }

  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::chrono::milliseconds delay{0};

private:
  void record(const std::string& what) {
    if (delay.count() > 0)
      std::this_thread::sleep_for(delay);
    std::lock_guard lock(mu_);
    calls_.push_back(what);
  }
  std::mutex mu_;
  std::vector<std::string> calls_;
};

v1::Request attachRequest(const std::string& containerId) {
  v1::Request request;
  auto* attach = request.mutable_attach_pod();
  attach->set_pod_namespace("default");
  attach->set_pod_name("web-0");
  attach->set_container_id(containerId);
  attach->set_netns_path("/run/netns/pod");
  attach->set_pod_ifname("eth0");
  attach->set_host_ifname("veth1234");
  attach->set_host_ifindex(17);
  return request;
}

struct Fixture {
  TempDir dir;
  std::string socket;
};

Fixture makeDir() {
  auto dir = TempDir::create("sock");
  if (!dir)
    throw std::runtime_error(dir.error().message()); // a broken test bed is a bug
  std::string socket = dir->path() + "/run/bpfchain/agent.sock";
  return Fixture{std::move(*dir), socket};
}

// A listening socket at `path` that never accepts: connections queue in its backlog.
FD silentListener(const std::string& path) {
  FD fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  return fd;
}

FD rawConnect(const std::string& path) {
  FD fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
      << strerror(errno);
  return fd;
}

TEST(AgentSocketFraming, RoundTripsEveryRequestKind) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  FD a(fds[0]);
  FD b(fds[1]);
  std::vector<v1::Request> requests;
  requests.push_back(attachRequest("c1"));
  requests.emplace_back().mutable_detach_pod()->set_container_id("c1");
  requests.emplace_back().mutable_check_pod()->set_host_ifname("veth1");
  requests.emplace_back().mutable_status();
  auto* gc = requests.emplace_back().mutable_gc();
  gc->add_valid_container_ids("c1");
  gc->add_valid_container_ids("c2");
  requests.emplace_back(); // nothing set: an empty body is a valid frame
  for (const auto& sent : requests) {
    auto deadline = Clock::now() + 1s;
    ASSERT_TRUE(writeFrame(a.get(), sent, deadline).ok());
    v1::Request received;
    auto read = readFrame(b.get(), received, deadline);
    ASSERT_TRUE(read.ok()) << read.error().message();
    EXPECT_EQ(received.SerializeAsString(), sent.SerializeAsString());
    EXPECT_EQ(received.kind_case(), sent.kind_case());
  }
}

TEST(AgentSocketFraming, HeaderIsBigEndianLength) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  FD a(fds[0]);
  FD b(fds[1]);
  v1::Request request = attachRequest(std::string(300, 'x'));
  ASSERT_TRUE(writeFrame(a.get(), request, Clock::now() + 1s).ok());
  std::string body = request.SerializeAsString();
  std::vector<unsigned char> buf(4 + body.size());
  ASSERT_EQ(::recv(b.get(), buf.data(), buf.size(), MSG_WAITALL), static_cast<ssize_t>(buf.size()));
  size_t length = (size_t{buf[0]} << 24) | (size_t{buf[1]} << 16) | (size_t{buf[2]} << 8) | buf[3];
  EXPECT_EQ(length, body.size());
  EXPECT_EQ(std::string(buf.begin() + 4, buf.end()), body);
}

TEST(AgentSocketFraming, OversizedFrameIsRefused) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  FD a(fds[0]);
  FD b(fds[1]);
  size_t size = kMaxFrameSize + 1;
  std::array<unsigned char, 4> header{
      static_cast<unsigned char>(size >> 24), static_cast<unsigned char>(size >> 16),
      static_cast<unsigned char>(size >> 8), static_cast<unsigned char>(size)};
  ASSERT_EQ(::send(a.get(), header.data(), header.size(), 0), 4);
  v1::Request request;
  auto read = readFrame(b.get(), request, Clock::now() + 1s);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), EMSGSIZE);
  EXPECT_NE(read.error().message().find("1048577"), std::string::npos) << read.error().message();

  // And nothing over the limit is ever sent.
  v1::Request big;
  for (int i = 0; i < 20000; ++i)
    big.mutable_gc()->add_valid_container_ids(std::string(64, 'a'));
  auto written = writeFrame(a.get(), big, Clock::now() + 1s);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code(), EMSGSIZE);
}

TEST(AgentSocketFraming, GarbageIsAProtocolError) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  FD a(fds[0]);
  FD b(fds[1]);
  const unsigned char frame[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
  ASSERT_EQ(::send(a.get(), frame, sizeof frame, 0), static_cast<ssize_t>(sizeof frame));
  v1::Request request;
  auto read = readFrame(b.get(), request, Clock::now() + 1s);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), EPROTO);
}

TEST(AgentSocket, ClientAndServerRoundTrip) {
  auto fx = makeDir();
  TestHandler handler;
  auto server = AgentSocketServer::start(fx.socket, handler);
  ASSERT_TRUE(server.ok()) << server.error().message();

  auto attached = AgentClient::call(fx.socket, attachRequest("c1"), 2s);
  ASSERT_TRUE(attached.ok()) << attached.error().message();
  EXPECT_TRUE(attached->ok());
  ASSERT_EQ(attached->chains_size(), 1);
  EXPECT_EQ(attached->chains(0).chain(), "edge-protect");
  EXPECT_EQ(attached->chains(0).interface(), "veth1234");
  EXPECT_EQ(attached->chains(0).root_program_id(), 41u);

  v1::Request check;
  check.mutable_check_pod()->set_host_ifname("veth9");
  auto checked = AgentClient::call(fx.socket, check, 2s);
  ASSERT_TRUE(checked.ok());
  EXPECT_FALSE(checked->ok());
  EXPECT_EQ(checked->reason(), "NotAttached");
  EXPECT_EQ(checked->message(), "no chain on veth9");

  v1::Request status;
  status.mutable_status();
  auto st = AgentClient::call(fx.socket, status, 2s);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->status().ready());
  EXPECT_EQ(st->status().node_name(), "node-1");

  v1::Request gc;
  gc.mutable_gc()->add_valid_container_ids("keep");
  gc.mutable_gc()->add_valid_container_ids("drop");
  auto collected = AgentClient::call(fx.socket, gc, 2s);
  ASSERT_TRUE(collected.ok());
  ASSERT_EQ(collected->removed_container_ids_size(), 1);
  EXPECT_EQ(collected->removed_container_ids(0), "drop");

  v1::Request detach;
  detach.mutable_detach_pod()->set_container_id("c1");
  ASSERT_TRUE(AgentClient::call(fx.socket, detach, 2s).ok());

  auto unknown = AgentClient::call(fx.socket, v1::Request(), 2s);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->ok());
  EXPECT_EQ(unknown->reason(), "UnknownRequest");

  EXPECT_EQ(handler.calls(), (std::vector<std::string>{"c1", "", "status", "gc", "c1"}));
}

TEST(AgentSocket, SocketIsMode0600InA0755Directory) {
  auto fx = makeDir();
  TestHandler handler;
  mode_t old = ::umask(0); // the mode must not depend on the caller's umask
  auto server = AgentSocketServer::start(fx.socket, handler);
  ::umask(old);
  ASSERT_TRUE(server.ok()) << server.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat(fx.socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((fx.dir.path() + "/run/bpfchain").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((fx.dir.path() + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST(AgentSocket, StopRemovesTheSocket) {
  auto fx = makeDir();
  TestHandler handler;
  auto server = AgentSocketServer::start(fx.socket, handler);
  ASSERT_TRUE(server.ok()) << server.error().message();
  (*server)->stop();
  EXPECT_NE(::access(fx.socket.c_str(), F_OK), 0);
  (*server)->stop(); // idempotent
  auto call = AgentClient::call(fx.socket, attachRequest("c1"), 1s);
  ASSERT_FALSE(call.ok());
  EXPECT_EQ(call.error().code(), ENOENT);
}

TEST(AgentSocket, UnreachableAgentIsDistinguishable) {
  auto fx = makeDir();
  auto missing = AgentClient::call(fx.dir.path() + "/nothing.sock", attachRequest("c1"), 1s);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ENOENT);
  EXPECT_NE(missing.error().message().find("nothing.sock"), std::string::npos);

  // A socket file whose server is gone: connection refused.
  std::string stale = fx.dir.path() + "/stale.sock";
  { FD listener = silentListener(stale); }
  auto refused = AgentClient::call(stale, attachRequest("c1"), 1s);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ECONNREFUSED);
}

TEST(AgentSocket, ReplacesAStaleSocketButNotALiveOne) {
  auto fx = makeDir();
  std::string path = fx.dir.path() + "/agent.sock";
  { FD listener = silentListener(path); } // the file stays, nobody serves it
  TestHandler handler;
  auto server = AgentSocketServer::start(path, handler);
  ASSERT_TRUE(server.ok()) << server.error().message();
  EXPECT_TRUE(AgentClient::call(path, attachRequest("c1"), 1s).ok());

  auto second = AgentSocketServer::start(path, handler);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), EADDRINUSE);
  EXPECT_TRUE(AgentClient::call(path, attachRequest("c2"), 1s).ok()); // the first still serves

  std::string file = fx.dir.path() + "/regular";
  FD created(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  ASSERT_TRUE(created.valid());
  auto onFile = AgentSocketServer::start(file, handler);
  ASSERT_FALSE(onFile.ok());
  EXPECT_EQ(onFile.error().code(), EEXIST);
  EXPECT_EQ(::access(file.c_str(), F_OK), 0); // never removed
}

TEST(AgentSocket, SilentServerTimesOut) {
  auto fx = makeDir();
  std::string path = fx.dir.path() + "/silent.sock";
  FD listener = silentListener(path);
  auto start = Clock::now();
  auto call = AgentClient::call(path, attachRequest("c1"), 200ms);
  auto elapsed = Clock::now() - start;
  ASSERT_FALSE(call.ok());
  EXPECT_EQ(call.error().code(), ETIMEDOUT) << call.error().message();
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 1500ms);
}

TEST(AgentSocket, ServerThatNeverAnswersTimesOut) {
  // The server accepts and then the handler hangs: the client's deadline still holds.
  auto fx = makeDir();
  TestHandler handler;
  handler.delay = 800ms;
  auto server = AgentSocketServer::start(fx.socket, handler);
  ASSERT_TRUE(server.ok()) << server.error().message();
  auto start = Clock::now();
  auto call = AgentClient::call(fx.socket, attachRequest("c1"), 150ms);
  auto elapsed = Clock::now() - start;
  ASSERT_FALSE(call.ok());
  EXPECT_EQ(call.error().code(), ETIMEDOUT);
  EXPECT_NE(call.error().message().find("read response"), std::string::npos)
      << call.error().message();
  EXPECT_LT(elapsed, 700ms);
}

TEST(AgentSocket, StuckClientDoesNotBlockTheAgent) {
  auto fx = makeDir();
  TestHandler handler;
  AgentSocketOptions options;
  options.workers = 1;
  options.ioTimeout = 200ms;
  auto server = AgentSocketServer::start(fx.socket, handler, options);
  ASSERT_TRUE(server.ok()) << server.error().message();

  // Connects, sends half a header, then nothing: the only worker drops it after ioTimeout.
  FD stuck = rawConnect(fx.socket);
  ASSERT_EQ(::send(stuck.get(), "\0\0", 2, 0), 2);
  auto start = Clock::now();
  auto call = AgentClient::call(fx.socket, attachRequest("c1"), 2s);
  ASSERT_TRUE(call.ok()) << call.error().message();
  EXPECT_LT(Clock::now() - start, 1500ms);
  char byte = 0;
  EXPECT_EQ(::recv(stuck.get(), &byte, 1, 0), 0); // closed by the server, no answer
}

// Idle connections (many more than workers) must not hold up a real request: requests are read
// without a worker, so the request is answered long before any idle one times out.
TEST(AgentSocket, IdleConnectionsDoNotDelayARequest) {
  auto fx = makeDir();
  TestHandler handler;
  AgentSocketOptions options;
  options.ioTimeout = 600s; // an idle connection would hold a worker for ten minutes
  auto server = AgentSocketServer::start(fx.socket, handler, options);
  ASSERT_TRUE(server.ok()) << server.error().message();
  std::vector<FD> idle;
  for (int i = 0; i < 40; ++i)
    idle.push_back(rawConnect(fx.socket));
  ASSERT_EQ(::send(idle[0].get(), "\0\0", 2, 0), 2); // and one that sent half a header
  auto call = AgentClient::call(fx.socket, attachRequest("c1"), 30s);
  ASSERT_TRUE(call.ok()) << call.error().message();
  EXPECT_TRUE(call->ok());
}

// Connections beyond maxConnections wait in the backlog, and are served once others close.
TEST(AgentSocket, HeldConnectionsAreBounded) {
  auto fx = makeDir();
  TestHandler handler;
  AgentSocketOptions options;
  options.ioTimeout = 600s;
  options.maxConnections = 8;
  auto server = AgentSocketServer::start(fx.socket, handler, options);
  ASSERT_TRUE(server.ok()) << server.error().message();
  std::vector<FD> idle;
  for (int i = 0; i < 8; ++i)
    idle.push_back(rawConnect(fx.socket));
  std::atomic<bool> answered{false};
  std::thread client([&] {
    auto call = AgentClient::call(fx.socket, attachRequest("c1"), 60s);
    EXPECT_TRUE(call.ok()) << call.error().message();
    answered = true;
  });
  // The server holds 8: the request waits in the backlog until one closes.
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(answered.load());
  EXPECT_TRUE(handler.calls().empty());
  idle.pop_back();
  client.join();
  EXPECT_TRUE(answered.load());
}

TEST(AgentSocket, OversizedRequestIsDroppedAndTheServerCarriesOn) {
  auto fx = makeDir();
  TestHandler handler;
  auto server = AgentSocketServer::start(fx.socket, handler);
  ASSERT_TRUE(server.ok()) << server.error().message();
  FD raw = rawConnect(fx.socket);
  const unsigned char header[] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(::send(raw.get(), header, sizeof header, 0), 4);
  char byte = 0;
  EXPECT_EQ(::recv(raw.get(), &byte, 1, 0), 0);
  EXPECT_TRUE(handler.calls().empty());

  v1::Request big;
  for (int i = 0; i < 20000; ++i)
    big.mutable_gc()->add_valid_container_ids(std::string(64, 'a'));
  auto refused = AgentClient::call(fx.socket, big, 1s);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), EMSGSIZE);

  EXPECT_TRUE(AgentClient::call(fx.socket, attachRequest("c1"), 1s).ok());
}

TEST(AgentSocket, ConcurrentClients) {
  auto fx = makeDir();
  TestHandler handler;
  handler.delay = 2ms;
  auto server = AgentSocketServer::start(fx.socket, handler);
  ASSERT_TRUE(server.ok()) << server.error().message();
  constexpr int kThreads = 16;
  constexpr int kCalls = 25;
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        std::string id = "c" + std::to_string(t) + "-" + std::to_string(i);
        auto response = AgentClient::call(fx.socket, attachRequest(id), 5s);
        if (response.ok() && response->ok() && response->chains_size() == 1)
          ++succeeded;
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(succeeded.load(), kThreads * kCalls);
  EXPECT_EQ(handler.calls().size(), static_cast<size_t>(kThreads * kCalls));
}

TEST(AgentSocket, StopWaitsForRequestsInProgress) {
  auto fx = makeDir();
  TestHandler handler;
  handler.delay = 300ms;
  auto server = AgentSocketServer::start(fx.socket, handler);
  ASSERT_TRUE(server.ok()) << server.error().message();
  std::thread client([&] {
    auto response = AgentClient::call(fx.socket, attachRequest("c1"), 2s);
    EXPECT_TRUE(response.ok()) << response.error().message();
  });
  std::this_thread::sleep_for(100ms); // the handler is running
  (*server)->stop();
  EXPECT_EQ(handler.calls().size(), 1u);
  client.join();
}

// The container id rule both ends apply (the agent names records and pins after the id).
TEST(AgentSocketProtocol, ContainerIdsAreTheCniSpecs) {
  EXPECT_EQ(invalidContainerId("cnitool-27fd0bf0e4a5.B_9"), std::nullopt);
  EXPECT_EQ(invalidContainerId(""), "must not be empty");
  EXPECT_EQ(invalidContainerId("-leading-dash"), "must start with a letter or digit");
  EXPECT_EQ(invalidContainerId("../escape"), "must start with a letter or digit");
  EXPECT_EQ(invalidContainerId("a/../b"), "may contain only letters, digits, '_', '.' and '-'");
  EXPECT_EQ(invalidContainerId("a b"), "may contain only letters, digits, '_', '.' and '-'");
}

} // namespace
} // namespace bpfchain::agent
