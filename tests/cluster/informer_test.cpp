// k8s::Informer against the real kube-apiserver + etcd of the test bed, faults included: etcd
// compacted while the informer is cut off (410, relist), kube-apiserver SIGKILLed and restarted
// mid-watch, a burst of updates to one object. Every test ends with the informer's cache equal
// to a fresh list from the server: the same keys at the same resourceVersions.
//
// A TCP relay between an informer and kube-apiserver lets a test cut that one client off while
// the server keeps serving the test's own writes.
#include <arpa/inet.h>
#include <atomic>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "harness/control_plane.h"
#include "k8s/informer.h"
#include "system/fd.h"

namespace bpfchain::k8s {
namespace {

using namespace std::chrono_literals;
using testing::ControlPlaneEnvironment;
using SteadyClock = std::chrono::steady_clock;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new testing::ControlPlaneEnvironment);

const Resource kWidgets{"testbed.bpfchain.io", "v1", "widgets", "Widget", false};
const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};

Json parse(const std::string& text) {
  return Json::parse(text);
}

Json widget(const std::string& name, int size, const std::string& labels = "{}") {
  return parse(R"({"apiVersion":"testbed.bpfchain.io/v1","kind":"Widget","metadata":{"name":")" +
               name + R"(","labels":)" + labels + R"(},"spec":{"size":)" + std::to_string(size) +
               "}}");
}

int sizeOf(const Json& obj) {
  return obj.has_field("spec") ? obj.at("spec").at("size").as_integer() : 0;
}

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, SteadyClock::duration timeout) {
  auto deadline = SteadyClock::now() + timeout;
  while (!condition()) {
    if (SteadyClock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Calls `attempt` until it succeeds or fails with a non-retriable error: the client's pooled
// connections die with a restarted kube-apiserver, and it may answer 5xx while it starts.
template <typename T> ApiResult<T> retrying(const std::function<ApiResult<T>()>& attempt) {
  auto deadline = SteadyClock::now() + 60s;
  for (;;) {
    ApiResult<T> result = attempt();
    if (result.ok() || !result.error().retriable() || SteadyClock::now() >= deadline)
      return result;
    std::this_thread::sleep_for(100ms);
  }
}

// key -> resourceVersion
using Versions = std::map<std::string, std::string>;

Versions versionsOf(const std::vector<Json>& objects) {
  Versions versions;
  for (const auto& obj : objects)
    versions[keyOf(obj)] = resourceVersionOf(obj);
  return versions;
}

// The end of every test: the cache converges to a fresh consistent list of the same selection.
void expectCacheMatchesServer(const Informer& informer, Client& client, const Resource& resource,
                              const std::string& ns, const ListOptions& selection) {
  Versions server;
  Versions cached;
  bool same = eventually(
      [&] {
        auto fresh = client.list(resource, ns, selection);
        if (!fresh)
          return false;
        server = versionsOf(fresh->items);
        cached = versionsOf(informer.list());
        return cached == server;
      },
      90s);
  EXPECT_TRUE(same) << "informer stats: errors " << informer.stats().errors << ", last error "
                    << informer.stats().lastError;
  EXPECT_EQ(cached, server);
}

// What the handlers saw, in order.
struct Seen {
  char type; // 'A'dd, 'U'pdate, 'D'elete
  std::string key;
  std::string oldVersion; // updates only
  std::string version;
  int size = 0; // spec.size of the (new) object, for widgets
};

class Recorder {
public:
  // The cache the handlers' calls describe: adds and updates set a key's version, deletes drop
  // it. It must equal the informer's cache, or a handler missed something.
  Versions replayed() const {
    std::lock_guard lock(mu_);
    Versions versions;
    for (const auto& s : seen_) {
      if (s.type == 'D')
        versions.erase(s.key);
      else
        versions[s.key] = s.version;
    }
    return versions;
  }
  InformerEventHandler handler() {
    return {.onAdd = [this](const Json& obj) { record('A', nullptr, obj); },
            .onUpdate = [this](const Json& old, const Json& obj) { record('U', &old, obj); },
            .onDelete = [this](const Json& obj) { record('D', nullptr, obj); }};
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  // The events from index `from` on, as "A name", "U name", "D name".
  std::vector<std::string> summary(size_t from = 0) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> lines;
    for (size_t i = from; i < seen_.size(); ++i)
      lines.push_back(std::string(1, seen_[i].type) + " " + seen_[i].key);
    return lines;
  }

private:
  void record(char type, const Json* old, const Json& obj) {
    std::lock_guard lock(mu_);
    seen_.push_back({type, keyOf(obj), old ? resourceVersionOf(*old) : "", resourceVersionOf(obj),
                     obj.has_field("spec") && obj.at("spec").has_field("size") ? sizeOf(obj) : 0});
  }
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

// A TCP relay to kube-apiserver (TLS passes through untouched: the server certificate names
// 127.0.0.1). cut() drops every relayed connection and closes new ones at once until restore().
class TcpProxy {
public:
  explicit TcpProxy(uint16_t upstream) : upstream_(upstream) {
    listen_ = FD(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (!listen_ || ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_.get(), 64) != 0 ||
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("proxy: cannot listen on loopback");
    port_ = ntohs(addr.sin_port);
    wake_ = FD(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    thread_ = std::thread([this] { loop(); });
  }
  ~TcpProxy() {
    done_ = true;
    wake();
    thread_.join();
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }
  void cut() {
    cut_ = true;
    wake();
  }
  void restore() { cut_ = false; }

private:
  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }
  void wake() const {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
  static bool writeAll(int fd, const char* data, size_t size) {
    while (size > 0) {
      ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      data += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }
  void loop() {
    std::vector<std::pair<FD, FD>> links; // (client, upstream)
    std::vector<char> buffer(1 << 16);
    while (!done_) {
      if (cut_)
        links.clear();
      std::vector<pollfd> fds{{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      for (const auto& [client, server] : links) {
        fds.push_back({client.get(), POLLIN, 0});
        fds.push_back({server.get(), POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0)
        continue;
      if (fds[1].revents) {
        uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof count);
        continue; // re-check done_ and cut_ first
      }
      std::vector<bool> broken(links.size(), false);
      for (size_t i = 0; i < links.size(); ++i) {
        for (int side = 0; side < 2; ++side) {
          if (!fds[2 + 2 * i + side].revents)
            continue;
          int from = side == 0 ? links[i].first.get() : links[i].second.get();
          int to = side == 0 ? links[i].second.get() : links[i].first.get();
          ssize_t n = ::recv(from, buffer.data(), buffer.size(), 0);
          if (n <= 0 || !writeAll(to, buffer.data(), static_cast<size_t>(n)))
            broken[i] = true;
        }
      }
      for (size_t i = links.size(); i-- > 0;)
        if (broken[i])
          links.erase(links.begin() + static_cast<std::ptrdiff_t>(i));
      if (fds[0].revents) {
        FD client(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client || cut_)
          continue; // closed at once: the client sees its connection fail
        FD server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in addr = loopback(upstream_);
        if (server && ::connect(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
          links.emplace_back(std::move(client), std::move(server));
      }
    }
  }

  uint16_t upstream_;
  uint16_t port_ = 0;
  FD listen_;
  FD wake_;
  std::atomic<bool> cut_{false};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class InformerTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto installed = ControlPlaneEnvironment::get().installCrds(
        std::string(BPFCHAIN_TESTDATA_DIR) + "/widget-crd.yaml", {"widgets.testbed.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
  }

  void SetUp() override {
    auto config = loadKubeconfig(ControlPlaneEnvironment::get().kubeconfig());
    ASSERT_TRUE(config.ok()) << config.error().message();
    config_ = *config;
    auto client = Client::create(config_);
    ASSERT_TRUE(client.ok()) << client.error().message();
    client_ = std::move(*client);
    // Every test starts with no widget.
    auto all = retrying<ObjectList>([&] { return client_->list(kWidgets, ""); });
    ASSERT_TRUE(all.ok()) << all.error().describe();
    for (const auto& w : all->items)
      (void)retrying<void>([&] { return client_->remove(kWidgets, "", nameOf(w)); });
  }

  // A client whose connections go through `proxy`.
  std::unique_ptr<Client> clientThrough(const TcpProxy& proxy) {
    Config relayed = config_;
    relayed.server = "https://127.0.0.1:" + std::to_string(proxy.port());
    auto client = Client::create(relayed);
    EXPECT_TRUE(client.ok()) << client.error().message();
    return client ? std::move(*client) : nullptr;
  }

  uint16_t apiserverPort() const {
    return static_cast<uint16_t>(std::stoi(config_.server.substr(config_.server.rfind(':') + 1)));
  }

  Json create(const Json& obj, const Resource& resource = kWidgets) {
    auto created = retrying<Json>([&] { return client_->create(resource, obj); });
    EXPECT_TRUE(created.ok()) << created.error().describe();
    return created ? *created : Json();
  }

  Json setSize(const std::string& name, int size) {
    auto patched = retrying<Json>([&] {
      return client_->patch(kWidgets, "", name, PatchType::Merge,
                            parse(R"({"spec":{"size":)" + std::to_string(size) + "}}"));
    });
    EXPECT_TRUE(patched.ok()) << patched.error().describe();
    return patched ? *patched : Json();
  }

  void remove(const std::string& name) {
    auto removed = retrying<void>([&] { return client_->remove(kWidgets, "", name); });
    EXPECT_TRUE(removed.ok()) << removed.error().describe();
  }

  Config config_;
  std::unique_ptr<Client> client_;
};

TEST_F(InformerTest, SyncsThenDeliversAddUpdateDeleteInOrder) {
  std::map<std::string, std::string> before;
  for (int i = 0; i < 25; ++i) {
    Json w = create(widget("sync-" + std::to_string(i), 1 + i));
    before[keyOf(w)] = resourceVersionOf(w);
  }
  // Pages of 10: the first list is paginated (a consistent one, so the pages are really used).
  Informer informer(*client_, kWidgets, {.pageSize = 10, .consistentFirstList = true});
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  EXPECT_FALSE(informer.hasSynced());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));

  // The initial list: one add per object, at the listed versions, in key order.
  auto initial = recorder.seen();
  ASSERT_EQ(initial.size(), 25u);
  Versions added;
  for (const auto& s : initial) {
    EXPECT_EQ(s.type, 'A');
    added[s.key] = s.version;
  }
  EXPECT_EQ(added, before);
  EXPECT_FALSE(informer.lastSyncResourceVersion().empty());
  EXPECT_TRUE(informer.get("sync-3").has_value());
  EXPECT_FALSE(informer.get("no-such-widget").has_value());

  Json created = create(widget("lifecycle", 1));
  Json updated = setSize("lifecycle", 2);
  remove("lifecycle");
  ASSERT_TRUE(eventually([&] { return recorder.size() >= 28; }, 30s));
  auto changes = recorder.seen();
  ASSERT_EQ(changes.size(), 28u);
  EXPECT_EQ(recorder.summary(25),
            (std::vector<std::string>{"A lifecycle", "U lifecycle", "D lifecycle"}));
  EXPECT_EQ(changes[25].version, resourceVersionOf(created));
  EXPECT_EQ(changes[26].oldVersion, resourceVersionOf(created));
  EXPECT_EQ(changes[26].version, resourceVersionOf(updated));
  EXPECT_EQ(changes[26].size, 2);
  EXPECT_FALSE(informer.get("lifecycle").has_value());
  EXPECT_EQ(informer.stats().lists, 1u);
  expectCacheMatchesServer(informer, *client_, kWidgets, "", {});
}

TEST_F(InformerTest, FirstListFromTheWatchCacheAlsoSyncs) {
  for (int i = 0; i < 5; ++i)
    create(widget("cached-" + std::to_string(i), 1));
  Informer informer(*client_, kWidgets); // resourceVersion "0", as client-go
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  create(widget("cached-late", 1));
  ASSERT_TRUE(eventually([&] { return informer.get("cached-late").has_value(); }, 30s));
  expectCacheMatchesServer(informer, *client_, kWidgets, "", {});
}

TEST_F(InformerTest, LabelSelectorScopesTheCacheAndItsEvents) {
  create(widget("edge-1", 1, R"({"tier":"edge"})"));
  create(widget("edge-2", 1, R"({"tier":"edge"})"));
  create(widget("core-1", 1, R"({"tier":"core"})"));
  Informer informer(*client_, kWidgets, {.labelSelector = "tier=edge"});
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  EXPECT_EQ(recorder.summary(), (std::vector<std::string>{"A edge-1", "A edge-2"}));

  create(widget("core-2", 1, R"({"tier":"core"})"));
  // Leaving the selection is a delete for this informer; entering it, an add.
  auto relabel = [&](const std::string& name, const std::string& tier) {
    auto r = client_->patch(kWidgets, "", name, PatchType::Merge,
                            parse(R"({"metadata":{"labels":{"tier":")" + tier + R"("}}})"));
    EXPECT_TRUE(r.ok()) << r.error().describe();
  };
  relabel("edge-2", "core");
  relabel("core-1", "edge");
  create(widget("edge-3", 1, R"({"tier":"edge"})"));
  ASSERT_TRUE(eventually([&] { return recorder.size() >= 5; }, 30s));
  std::this_thread::sleep_for(300ms); // nothing else may arrive (core-2 is not selected)
  EXPECT_EQ(recorder.summary(2), (std::vector<std::string>{"D edge-2", "A core-1", "A edge-3"}));
  expectCacheMatchesServer(informer, *client_, kWidgets, "", {.labelSelector = "tier=edge"});
}

TEST_F(InformerTest, FieldSelectorOnMetadataName) {
  create(widget("chosen", 1));
  create(widget("other", 1));
  Informer informer(*client_, kWidgets, {.fieldSelector = "metadata.name=chosen"});
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  setSize("other", 5);
  setSize("chosen", 6);
  ASSERT_TRUE(eventually([&] { return recorder.size() >= 2; }, 30s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(recorder.summary(), (std::vector<std::string>{"A chosen", "U chosen"}));
  EXPECT_EQ(recorder.seen().back().size, 6);
  expectCacheMatchesServer(informer, *client_, kWidgets, "",
                           {.fieldSelector = "metadata.name=chosen"});
}

TEST_F(InformerTest, NamespaceScopesTheCache) {
  for (const char* ns : {"informer-a", "informer-b"}) {
    auto r = client_->create(resources::kNamespaces,
                             parse(std::string(R"({"metadata":{"name":")") + ns + R"("}})"));
    ASSERT_TRUE(r.ok() || r.error().alreadyExists()) << r.error().describe();
    for (int i = 0; i < 3; ++i)
      create(parse(R"({"metadata":{"name":"cm-)" + std::to_string(i) + R"(","namespace":")" + ns +
                   R"("},"data":{"k":"v"}})"),
             kConfigMaps);
  }
  Informer informer(*client_, kConfigMaps, {.ns = "informer-a"});
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  for (const auto& obj : informer.list())
    EXPECT_EQ(namespaceOf(obj), "informer-a") << keyOf(obj);
  EXPECT_TRUE(informer.get("informer-a/cm-1").has_value());
  EXPECT_FALSE(informer.get("informer-b/cm-1").has_value());
  expectCacheMatchesServer(informer, *client_, kConfigMaps, "informer-a", {});
  for (const char* ns : {"informer-a", "informer-b"})
    (void)client_->remove(resources::kNamespaces, "", ns);
}

// An object can come without managedFields (a client cleared them with `managedFields: [{}]`,
// as the server-side apply docs describe); stripping must not throw on it. Regression: the
// operator's informers aborted the process on such a Node.
TEST_F(InformerTest, StripManagedFieldsKeepsObjectsThatHaveNone) {
  create(widget("tracked", 1));
  create(widget("bare", 1));
  auto cleared = client_->patch(kWidgets, "", "bare", PatchType::Merge,
                                parse(R"({"metadata":{"managedFields":[{}]}})"));
  ASSERT_TRUE(cleared.ok()) << cleared.error().describe();
  ASSERT_FALSE(cleared->at("metadata").has_field("managedFields"));

  Informer informer(*client_, kWidgets, {.stripManagedFields = true});
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  setSize("bare", 2);
  auto again = client_->patch(kWidgets, "", "tracked", PatchType::Merge,
                              parse(R"({"metadata":{"managedFields":[{}]},"spec":{"size":3}})"));
  ASSERT_TRUE(again.ok()) << again.error().describe();
  ASSERT_TRUE(eventually([&] { return recorder.size() >= 4; }, 30s));
  EXPECT_EQ(recorder.summary(2), (std::vector<std::string>{"U bare", "U tracked"}));
  for (const auto& obj : informer.list())
    EXPECT_FALSE(obj.at("metadata").has_field("managedFields")) << keyOf(obj);
  EXPECT_EQ(sizeOf(*informer.get("tracked")), 3);
  EXPECT_EQ(informer.stats().errors, 0u) << informer.stats().lastError;
}

TEST_F(InformerTest, RewatchesAfterTheServerEndsTheWatchAndBookmarksAdvanceTheVersion) {
  create(widget("steady", 1));
  // The server ends each watch after 5 s, and sends a bookmark about 2 s before that end.
  Informer informer(*client_, kWidgets, {.watchTimeout = 5s});
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  std::string synced = informer.lastSyncResourceVersion();
  // Writes elsewhere move etcd's revision; only a bookmark can tell this informer so. The
  // widgets' watch cache learns of that revision when a consistent list of widgets makes it ask
  // etcd for progress (ConsistentListFromCache); its next bookmark then carries it.
  create(parse(R"({"metadata":{"name":"bookmark-bump","namespace":"default"}})"), kConfigMaps);
  EXPECT_TRUE(eventually(
      [&] {
        (void)client_->list(kWidgets, "");
        std::this_thread::sleep_for(200ms);
        return informer.lastSyncResourceVersion() != synced;
      },
      20s))
      << "no bookmark advanced the resourceVersion";
  EXPECT_EQ(recorder.size(), 1u); // the bookmark called no handler
  for (int i = 2; i <= 6; ++i) {
    setSize("steady", i);
    std::this_thread::sleep_for(1500ms); // spans several watches
  }
  ASSERT_TRUE(eventually([&] { return recorder.size() >= 6; }, 20s));
  std::vector<int> sizes;
  for (const auto& s : recorder.seen())
    sizes.push_back(s.size);
  EXPECT_EQ(sizes, (std::vector<int>{1, 2, 3, 4, 5, 6})); // none lost between watches
  auto stats = informer.stats();
  EXPECT_GE(stats.watches, 3u);
  EXPECT_EQ(stats.lists, 1u) << stats.lastError; // re-watched, never relisted
  EXPECT_EQ(stats.expired, 0u);
  expectCacheMatchesServer(informer, *client_, kWidgets, "", {});
  (void)client_->remove(kConfigMaps, "default", "bookmark-bump");
}

TEST_F(InformerTest, RelistsAfterEtcdIsCompactedPastItsVersionAndDeliversTheDifference) {
  auto& plane = ControlPlaneEnvironment::get();
  Json kept = create(widget("kept", 1));
  Json changed = create(widget("changed", 1));
  Json gone = create(widget("gone", 1));
  TcpProxy proxy(apiserverPort());
  auto relayed = clientThrough(proxy);
  ASSERT_TRUE(relayed);
  Informer informer(*relayed, kWidgets);
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  ASSERT_EQ(recorder.size(), 3u);
  std::string cutAt = informer.lastSyncResourceVersion();

  // Cut the informer off; it retries with backoff meanwhile.
  proxy.cut();
  ASSERT_TRUE(eventually([&] { return informer.stats().errors >= 1; }, 30s));
  // A write elsewhere, so the restarted watch cache begins after the informer's version.
  create(parse(R"({"metadata":{"name":"compaction-bump","namespace":"default"}})"), kConfigMaps);
  auto restarted = plane.restartApiserver(0.5);
  ASSERT_TRUE(restarted.ok()) << restarted.error().message();
  Json changedNow = setSize("changed", 2);
  remove("gone");
  Json added = create(widget("added", 1));
  auto compacted = plane.compactEtcd();
  ASSERT_TRUE(compacted.ok()) << compacted.error().message();
  std::cout << "compacted etcd at revision " << *compacted << "; the informer was at " << cutAt
            << "\n";
  proxy.restore();

  expectCacheMatchesServer(informer, *client_, kWidgets, "", {});
  auto stats = informer.stats();
  std::cout << "informer: " << stats.lists << " lists, " << stats.watches << " watches, "
            << stats.expired << " expired, " << stats.errors << " errors; last: " << stats.lastError
            << "\n";
  EXPECT_GE(stats.expired, 1u) << "no 410 seen; last error: " << stats.lastError;
  EXPECT_GE(stats.lists, 2u);
  // The relist's difference: the update, the add, and the delete of what vanished meanwhile,
  // with the last state the cache knew; nothing for the unchanged object.
  auto seen = recorder.seen();
  std::vector<std::string> after = recorder.summary(3);
  std::sort(after.begin(), after.end());
  EXPECT_EQ(after, (std::vector<std::string>{"A added", "D gone", "U changed"}));
  for (size_t i = 3; i < seen.size(); ++i) {
    if (seen[i].type == 'D') {
      EXPECT_EQ(seen[i].version, resourceVersionOf(gone));
    } else if (seen[i].type == 'U') {
      EXPECT_EQ(seen[i].oldVersion, resourceVersionOf(changed));
      EXPECT_EQ(seen[i].version, resourceVersionOf(changedNow));
    } else {
      EXPECT_EQ(seen[i].version, resourceVersionOf(added));
    }
  }
  EXPECT_EQ(informer.get("kept").value().serialize(), kept.serialize());
  EXPECT_EQ(recorder.replayed(), versionsOf(informer.list()));
  (void)retrying<void>([&] { return client_->remove(kConfigMaps, "default", "compaction-bump"); });
}

TEST_F(InformerTest, ConvergesAfterKubeApiserverIsKilledAndRestartedMidWatch) {
  auto& plane = ControlPlaneEnvironment::get();
  for (int i = 0; i < 10; ++i)
    create(widget("churn-" + std::to_string(i), 1));
  Informer informer(*client_, kWidgets);
  Recorder recorder;
  informer.addEventHandler(recorder.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));

  // A writer changes objects all along: creates, updates, deletes; some fail while the server
  // is down, which is fine, the server's state is what counts.
  std::atomic<bool> writing{true};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    auto client = Client::create(config_);
    ASSERT_TRUE(client.ok());
    for (int i = 0; writing; ++i) {
      std::string name = "churn-" + std::to_string(i % 15);
      bool ok = false;
      switch (i % 3) {
      case 0:
        ok = (*client)->create(kWidgets, widget(name, 1)).ok();
        break;
      case 1:
        ok = (*client)
                 ->patch(kWidgets, "", name, PatchType::Merge,
                         parse(R"({"spec":{"size":)" + std::to_string(1 + i % 50) + "}}"))
                 .ok();
        break;
      default:
        ok = (*client)->remove(kWidgets, "", "churn-" + std::to_string((i * 7) % 15)).ok();
      }
      writes += ok ? 1 : 0;
      std::this_thread::sleep_for(10ms);
    }
  });
  std::this_thread::sleep_for(1s);
  int beforeKill = writes;
  auto restarted = plane.restartApiserver(2.0);
  ASSERT_TRUE(restarted.ok()) << restarted.error().message();
  int atRestart = writes;
  ASSERT_TRUE(eventually([&] { return writes > atRestart + 20; }, 30s));
  writing = false;
  writer.join();
  EXPECT_GT(beforeKill, 0);

  expectCacheMatchesServer(informer, *client_, kWidgets, "", {});
  EXPECT_EQ(recorder.replayed(), versionsOf(informer.list()));
  auto stats = informer.stats();
  EXPECT_GE(stats.watches, 2u);
  std::cout << "writes " << writes << "; informer: " << stats.lists << " lists, " << stats.watches
            << " watches, " << stats.expired << " expired, " << stats.errors
            << " errors; last: " << stats.lastError << "\n";
}

TEST_F(InformerTest, AThousandRapidUpdatesEndAtTheServersFinalState) {
  create(widget("hot", 1));
  Informer informer(*client_, kWidgets);
  std::mutex mu;
  std::vector<int> sizes;
  Json last;
  informer.addEventHandler({.onUpdate = [&](const Json&, const Json& obj) {
    std::lock_guard lock(mu);
    sizes.push_back(sizeOf(obj));
    last = obj;
  }});
  informer.start();
  ASSERT_TRUE(informer.waitForSync(30s));
  constexpr int kUpdates = 1000;
  for (int i = 1; i <= kUpdates; ++i) {
    auto r = client_->patch(kWidgets, "", "hot", PatchType::Merge,
                            parse(R"({"spec":{"size":)" + std::to_string(1 + i) + "}}"));
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  auto final = client_->get(kWidgets, "", "hot");
  ASSERT_TRUE(final.ok());
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard lock(mu);
        return resourceVersionOf(last) == resourceVersionOf(*final);
      },
      30s));
  std::lock_guard lock(mu);
  EXPECT_EQ(last.serialize(), final->serialize());
  EXPECT_EQ(sizeOf(last), 1 + kUpdates);
  EXPECT_TRUE(std::is_sorted(sizes.begin(), sizes.end())) << "handler saw events out of order";
  if (informer.stats().lists == 1) { // no relist coalesced any: every update, once each
    EXPECT_EQ(sizes.size(), static_cast<size_t>(kUpdates));
  }
  expectCacheMatchesServer(informer, *client_, kWidgets, "", {});
}

TEST_F(InformerTest, StopIsPromptWhileWatchingAndWhileBackingOff) {
  create(widget("idle", 1));
  {
    Informer informer(*client_, kWidgets);
    informer.start();
    ASSERT_TRUE(informer.waitForSync(30s));
    std::this_thread::sleep_for(300ms); // in the watch now
    auto t0 = SteadyClock::now();
    informer.stop();
    EXPECT_LT(SteadyClock::now() - t0, 2s);
    EXPECT_TRUE(informer.hasSynced()); // stays synced after stop
  }
  TcpProxy proxy(apiserverPort());
  proxy.cut();
  auto relayed = clientThrough(proxy);
  ASSERT_TRUE(relayed);
  Informer unreachable(*relayed, kWidgets);
  unreachable.start();
  EXPECT_FALSE(unreachable.waitForSync(3s)); // lists fail, with growing backoff
  EXPECT_GE(unreachable.stats().errors, 2u);
  EXPECT_FALSE(unreachable.stats().lastError.empty());
  auto t0 = SteadyClock::now();
  unreachable.stop();
  EXPECT_LT(SteadyClock::now() - t0, 1s);
  EXPECT_FALSE(unreachable.hasSynced());
}

} // namespace
} // namespace bpfchain::k8s
