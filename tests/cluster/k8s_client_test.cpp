// common/k8s against the real kube-apiserver of the test bed: every request kind, errors as
// values with status and reason, conflicts and their retry, status writes over a stale copy,
// server-side apply conflicts between field managers, pagination, and watch.
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "harness/control_plane.h"
#include "harness/resources.h"
#include "k8s/client.h"

namespace bpfchain::k8s {
namespace {

using testing::ControlPlaneEnvironment;

[[maybe_unused]] auto* const kControlPlane =
    ::testing::AddGlobalTestEnvironment(new testing::ControlPlaneEnvironment);

const Resource kWidgets{"testbed.bpfchain.io", "v1", "widgets", "Widget", false};
const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};

Json parse(const std::string& text) {
  return Json::parse(text);
}

Json widget(const std::string& name, int size) {
  return parse(R"({"apiVersion":"testbed.bpfchain.io/v1","kind":"Widget","metadata":{"name":")" +
               name + R"("},"spec":{"size":)" + std::to_string(size) + "}}");
}

class K8sClient : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto installed = ControlPlaneEnvironment::get().installCrds(
        std::string(BPFCHAIN_TESTDATA_DIR) + "/widget-crd.yaml", {"widgets.testbed.bpfchain.io"});
    ASSERT_TRUE(installed.ok()) << installed.error().message();
  }

  void SetUp() override {
    auto config = loadKubeconfig(ControlPlaneEnvironment::get().kubeconfig());
    ASSERT_TRUE(config.ok()) << config.error().message();
    auto client = Client::create(*config);
    ASSERT_TRUE(client.ok()) << client.error().message();
    client_ = std::move(*client);
  }

  std::unique_ptr<Client> client_;
};

TEST_F(K8sClient, KubeconfigAuthenticatesWithTheClientCertificate) {
  auto ns = client_->get(resources::kNamespaces, "", "default");
  ASSERT_TRUE(ns.ok()) << ns.error().describe();
  EXPECT_EQ(nameOf(*ns), "default");
}

// A bearer token read from a file (the in-cluster config's way), written as kubectl prints it,
// authenticates as its service account. A file that cannot be read sends no token.
TEST_F(K8sClient, ATokenFileAuthenticatesAsItsServiceAccount) {
  const auto& plane = ControlPlaneEnvironment::get();
  (void)plane.kubectlOutput({"create", "serviceaccount", "token-reader", "-n", "default"});
  auto token = plane.kubectl({"create", "token", "token-reader", "-n", "default"});
  ASSERT_TRUE(token.ok()) << token.error().message();
  std::string text = token->out;
  if (text.back() != '\n')
    text += '\n'; // as `kubectl create token` prints it
  auto dir = testing::TempDir::create("token");
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  std::ofstream(dir->path() + "/token") << text;

  auto config = loadKubeconfig(plane.kubeconfig()).value();
  config.clientCertPem.clear();
  config.clientKeyPem.clear();
  config.tokenFile = dir->path() + "/token";
  auto got = Client::create(config).value()->get(kConfigMaps, "default", "anything");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().status, 403) << got.error().message; // who it is, not what it may do
  EXPECT_NE(got.error().message.find("system:serviceaccount:default:token-reader"),
            std::string::npos)
      << got.error().message;

  config.tokenFile = dir->path() + "/missing";
  auto anonymous = Client::create(config).value()->get(kConfigMaps, "default", "anything");
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.error().message.find("token-reader"), std::string::npos)
      << anonymous.error().message;
  EXPECT_TRUE(anonymous.error().status == 401 ||
              anonymous.error().message.find("system:anonymous") != std::string::npos)
      << anonymous.error().status << " " << anonymous.error().message;
}

TEST_F(K8sClient, ErrorsCarryStatusAndReason) {
  auto missing = client_->get(kWidgets, "", "no-such-widget");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().status, 404);
  EXPECT_EQ(missing.error().reason, "NotFound");
  EXPECT_TRUE(missing.error().notFound());
  EXPECT_NE(missing.error().message.find("no-such-widget"), std::string::npos);

  auto invalid = client_->create(kWidgets, widget("too-small", 0));
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().status, 422);
  EXPECT_EQ(invalid.error().reason, "Invalid");
  EXPECT_NE(invalid.error().message.find("spec.size"), std::string::npos);

  Config bad = client_->config();
  bad.server = "https://127.0.0.1:1";
  auto unreachable = Client::create(bad);
  ASSERT_TRUE(unreachable.ok());
  auto down = (*unreachable)->get(resources::kNamespaces, "", "default");
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(down.error().transport());
  EXPECT_TRUE(down.error().retriable());
}

TEST_F(K8sClient, CreateGetUpdatePatchDelete) {
  auto created = client_->create(kWidgets, widget("crud", 1));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_EQ(generationOf(*created), 1);

  auto again = client_->create(kWidgets, widget("crud", 1));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(again.error().alreadyExists());

  Json changed = *created;
  changed[U("spec")][U("size")] = Json::number(2);
  auto updated = client_->update(kWidgets, changed);
  ASSERT_TRUE(updated.ok()) << updated.error().describe();
  EXPECT_EQ(updated->at(U("spec")).at(U("size")).as_integer(), 2);

  // The same stale resourceVersion again: an optimistic-concurrency conflict.
  changed[U("spec")][U("size")] = Json::number(3);
  auto stale = client_->update(kWidgets, changed);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().status, 409);
  EXPECT_TRUE(stale.error().conflict());

  auto merged = client_->patch(kWidgets, "", "crud", PatchType::Merge,
                               parse(R"({"metadata":{"labels":{"tier":"edge"}}})"));
  ASSERT_TRUE(merged.ok()) << merged.error().describe();
  EXPECT_EQ(labelsOf(*merged).at("tier"), "edge");

  auto jsonPatched = client_->patch(kWidgets, "", "crud", PatchType::Json,
                                    parse(R"([{"op":"replace","path":"/spec/size","value":7}])"));
  ASSERT_TRUE(jsonPatched.ok()) << jsonPatched.error().describe();
  EXPECT_EQ(jsonPatched->at(U("spec")).at(U("size")).as_integer(), 7);

  // The status subresource: its own write, no generation bump.
  Json withStatus = *jsonPatched;
  withStatus[U("status")][U("observedGeneration")] = Json::number(generationOf(*jsonPatched));
  auto status = client_->update(kWidgets, withStatus, {.subresource = "status"});
  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_EQ(generationOf(*status), generationOf(*jsonPatched));
  auto read = client_->get(kWidgets, "", "crud");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->at(U("status")).at(U("observedGeneration")).as_integer(),
            generationOf(*jsonPatched));

  ASSERT_TRUE(client_->remove(kWidgets, "", "crud").ok());
  EXPECT_TRUE(client_->get(kWidgets, "", "crud").error().notFound());
  EXPECT_TRUE(client_->remove(kWidgets, "", "crud").error().notFound());
}

TEST_F(K8sClient, RetryOnConflictResolvesConcurrentWriters) {
  ASSERT_TRUE(client_->create(kWidgets, widget("contended", 1)).ok());
  // Four writers each add 1 to spec.size ten times, re-reading on every conflict.
  std::vector<std::thread> writers;
  std::atomic<int> failures{0}, conflictsSeen{0};
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = retryOnConflict<Json>(
            [&]() -> ApiResult<Json> {
              auto current = client_->get(kWidgets, "", "contended");
              if (!current)
                return current;
              Json next = *current;
              next[U("spec")][U("size")] =
                  Json::number(current->at(U("spec")).at(U("size")).as_integer() + 1);
              auto written = client_->update(kWidgets, next);
              if (!written && written.error().conflict())
                ++conflictsSeen;
              return written;
            },
            50);
        if (!r)
          ++failures;
      }
    });
  }
  for (auto& t : writers)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  auto final = client_->get(kWidgets, "", "contended");
  ASSERT_TRUE(final.ok());
  EXPECT_EQ(final->at(U("spec")).at(U("size")).as_integer(), 41); // no lost update
  std::cout << "conflicts resolved by retry: " << conflictsSeen.load() << "\n";
  ASSERT_TRUE(client_->remove(kWidgets, "", "contended").ok());
}

TEST_F(K8sClient, UpdateStatusWritesOverACopyTheWatchHasNotRefreshed) {
  auto created = client_->create(kWidgets, widget("status-writer", 1));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto status = [](int n) { return parse(R"({"observedGeneration":)" + std::to_string(n) + "}"); };
  auto observed = [](const Json& o) {
    return o.at(U("status")).at(U("observedGeneration")).as_integer();
  };
  WriteVersion version;
  // Twice from the copy as created, as a writer whose watch has not brought its first write.
  auto first = updateStatus(*client_, kWidgets, *created, status(1), "test", version);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  auto second = updateStatus(*client_, kWidgets, *created, status(2), "test", version);
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_EQ(observed(*second), 2);
  // Someone else changes the spec: the copy is stale; the write reads again and keeps the spec.
  Json spec = *second;
  spec[U("spec")][U("size")] = Json::number(5);
  ASSERT_TRUE(client_->update(kWidgets, spec).ok());
  auto third = updateStatus(*client_, kWidgets, *created, status(3), "test", version);
  ASSERT_TRUE(third.ok()) << third.error().describe();
  auto read = client_->get(kWidgets, "", "status-writer");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(observed(*read), 3);
  EXPECT_EQ(read->at(U("spec")).at(U("size")).as_integer(), 5); // a status write keeps the spec
  ASSERT_TRUE(client_->remove(kWidgets, "", "status-writer").ok());
}

TEST_F(K8sClient, ServerSideApplyConflictsBetweenFieldManagers) {
  auto first = client_->apply(kWidgets, widget("applied", 3), "operator-a", false);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  // Idempotent: the same apply again changes nothing.
  auto same = client_->apply(kWidgets, widget("applied", 3), "operator-a", false);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(resourceVersionOf(*same), resourceVersionOf(*first));

  auto contested = client_->apply(kWidgets, widget("applied", 5), "operator-b", false);
  ASSERT_FALSE(contested.ok());
  EXPECT_EQ(contested.error().status, 409);
  EXPECT_TRUE(contested.error().conflict());
  EXPECT_NE(contested.error().message.find("operator-a"), std::string::npos)
      << contested.error().message;

  auto forced = client_->apply(kWidgets, widget("applied", 5), "operator-b", true);
  ASSERT_TRUE(forced.ok()) << forced.error().describe();
  EXPECT_EQ(forced->at(U("spec")).at(U("size")).as_integer(), 5);
  ASSERT_TRUE(client_->remove(kWidgets, "", "applied").ok());
}

TEST_F(K8sClient, ListFollowsEveryPageOfANamespacedCollection) {
  ASSERT_TRUE(
      client_->create(resources::kNamespaces, parse(R"({"metadata":{"name":"paging"}})")).ok());
  for (int i = 0; i < 25; ++i) {
    auto r = client_->create(kConfigMaps, parse(R"({"metadata":{"name":"cm-)" + std::to_string(i) +
                                                R"(","namespace":"paging","labels":{"parity":")" +
                                                (i % 2 ? "odd" : "even") + R"("}},"data":{"i":")" +
                                                std::to_string(i) + R"("}})"));
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  auto all = client_->list(kConfigMaps, "paging", {.limit = 7});
  ASSERT_TRUE(all.ok()) << all.error().describe();
  EXPECT_EQ(all->items.size(), 25u); // four pages
  EXPECT_FALSE(all->resourceVersion.empty());
  auto odd = client_->list(kConfigMaps, "paging", {.labelSelector = "parity=odd", .limit = 5});
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->items.size(), 12u);
  auto one = client_->list(kConfigMaps, "paging", {.fieldSelector = "metadata.name=cm-3"});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->items.size(), 1u);
  EXPECT_EQ(keyOf(one->items[0]), "paging/cm-3");
}

TEST_F(K8sClient, WatchStreamsEveryChangeInOrderUntilStopped) {
  auto start = client_->list(kWidgets, "");
  ASSERT_TRUE(start.ok());
  WatchStop stop;
  std::vector<std::pair<WatchEventType, std::string>> seen;
  std::mutex mu;
  std::thread watcher([&] {
    auto r = client_->watch(
        kWidgets, "", {.resourceVersion = start->resourceVersion, .timeoutSeconds = 60},
        [&](WatchEvent& e) {
          std::lock_guard lock(mu);
          if (e.type != WatchEventType::Bookmark)
            seen.emplace_back(e.type, nameOf(e.object));
          return true;
        },
        stop);
    EXPECT_TRUE(r.ok()) << r.error().describe();
  });
  ASSERT_TRUE(client_->create(kWidgets, widget("watched", 1)).ok());
  ASSERT_TRUE(
      client_->patch(kWidgets, "", "watched", PatchType::Merge, parse(R"({"spec":{"size":2}})"))
          .ok());
  ASSERT_TRUE(client_->remove(kWidgets, "", "watched").ok());
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(mu);
      if (seen.size() >= 3)
        break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop.request();
  watcher.join();
  std::vector<std::pair<WatchEventType, std::string>> expected{
      {WatchEventType::Added, "watched"},
      {WatchEventType::Modified, "watched"},
      {WatchEventType::Deleted, "watched"}};
  EXPECT_EQ(seen, expected);
}

} // namespace
} // namespace bpfchain::k8s
