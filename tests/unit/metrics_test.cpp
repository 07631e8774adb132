// MetricsServer on a real loopback socket: what a Prometheus scrape, a kubelet probe and a
// mistyped URL get back, checked with a plain HTTP/1.1 client and Prometheus's own promtool.
#include <arpa/inet.h>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "k8s/k8s_metrics.h"
#include "metrics/metrics_server.h"
#include "metrics/process_collector.h"
#include "system/fd.h"

namespace bpfchain::metrics {
namespace {

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// One request on a fresh connection, read to EOF (the server closes: no keep-alive).
HttpResponse request(uint16_t port, const std::string& method, const std::string& path) {
  HttpResponse response;
  FD sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(sock.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect to port " << port << ": " << std::strerror(errno);
    return response;
  }
  std::string text = method + " " + path +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: metrics_test\r\n"
                     "Connection: close\r\n\r\n";
  EXPECT_EQ(::send(sock.get(), text.data(), text.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(text.size()));
  std::string raw;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::recv(sock.get(), buf, sizeof buf, 0)) > 0)
    raw.append(buf, n);
  auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) {
    ADD_FAILURE() << "not an HTTP/1.1 response: " << raw;
    return response;
  }
  response.status = std::stoi(raw.substr(9, 3));
  response.headers = raw.substr(0, end);
  response.body = raw.substr(end + 4);
  return response;
}

HttpResponse get(uint16_t port, const std::string& path) {
  return request(port, "GET", path);
}

std::unique_ptr<MetricsServer> startOnFreePort() {
  auto server = MetricsServer::start("127.0.0.1:0");
  EXPECT_TRUE(server.ok()) << server.error().message();
  if (!server)
    return nullptr;
  EXPECT_NE((*server)->port(), 0);
  return std::move(*server);
}

// Prometheus's own linter accepts `body`: types, help, names, histogram buckets.
void expectPromtoolAccepts(const std::string& body) {
  char path[] = "/tmp/bpfchain-metrics-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  FD file(fd);
  ASSERT_EQ(::write(file.get(), body.data(), body.size()), static_cast<ssize_t>(body.size()));
  std::string command = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    output.append(buf, n);
  int status = ::pclose(pipe);
  ::unlink(path);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_NE(WEXITSTATUS(status), 127) << "promtool is missing (Debian package prometheus)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << output << "\n--- checked ---\n" << body;
  EXPECT_EQ(output, "");
}

// Builds its samples when scraped, as the agent's kernel counters do: the value is read at
// Collect() time from wherever it lives (here an atomic the test moves).
class RunCountCollectable : public prometheus::Collectable {
public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "bpfchain_test_root_runs_total";
    family.help = "Runs of the root program, read from the kernel at scrape time.";
    family.type = prometheus::MetricType::Counter;
    for (const char* iface : {"eth0", "eth1"}) {
      prometheus::ClientMetric metric;
      metric.label = {{"interface", iface}, {"hook", "xdp"}};
      metric.counter.value = static_cast<double>(runs.load()) * (iface[3] == '0' ? 1 : 2);
      family.metric.push_back(std::move(metric));
    }
    ++collected;
    return {family};
  }
  std::atomic<uint64_t> runs{0};
  mutable std::atomic<int> collected{0};
};

TEST(MetricsServer, ServesRegisteredMetricsInRegistrationOrder) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  auto registry = std::make_shared<prometheus::Registry>();
  auto& requests = prometheus::BuildCounter()
                       .Name("bpfchain_test_requests_total")
                       .Help("Requests served.")
                       .Register(*registry);
  requests.Add({{"result", "success"}}).Increment(3);
  auto custom = std::make_shared<RunCountCollectable>();
  custom->runs = 41;
  server->add(registry);
  server->add(custom);

  HttpResponse first = get(server->port(), "/metrics");
  EXPECT_EQ(first.status, 200);
  EXPECT_NE(first.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos)
      << first.headers;
  EXPECT_NE(first.body.find("bpfchain_test_requests_total{result=\"success\"} 3"),
            std::string::npos)
      << first.body;
  EXPECT_NE(first.body.find("bpfchain_test_root_runs_total{interface=\"eth0\",hook=\"xdp\"} 41"),
            std::string::npos)
      << first.body;
  EXPECT_NE(first.body.find("bpfchain_test_root_runs_total{interface=\"eth1\",hook=\"xdp\"} 82"),
            std::string::npos)
      << first.body;
  EXPECT_LT(first.body.find("bpfchain_test_requests_total"),
            first.body.find("bpfchain_test_root_runs_total"));

  // The custom collectable is asked again on every scrape.
  custom->runs = 1000;
  HttpResponse second = get(server->port(), "/metrics");
  EXPECT_NE(second.body.find("bpfchain_test_root_runs_total{interface=\"eth0\",hook=\"xdp\"} 1000"),
            std::string::npos)
      << second.body;
  EXPECT_EQ(custom->collected.load(), 2);
}

TEST(MetricsServer, DropsCollectablesThatHaveGone) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  auto custom = std::make_shared<RunCountCollectable>();
  server->add(custom);
  EXPECT_NE(get(server->port(), "/metrics").body.find("bpfchain_test_root_runs_total"),
            std::string::npos);
  custom.reset();
  HttpResponse after = get(server->port(), "/metrics");
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(after.body, "");
}

TEST(MetricsServer, ReadyzFlipsFrom503To200AndNamesEachFailingCheck) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  HttpResponse none = get(server->port(), "/readyz");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body, "ok\n");

  std::atomic<bool> synced{false}, connected{false};
  server->addReadinessCheck("informers", [&]() -> std::optional<std::string> {
    if (synced)
      return std::nullopt;
    return "caches not synced: bpfchains";
  });
  server->addReadinessCheck("apiserver", [&]() -> std::optional<std::string> {
    if (connected)
      return std::nullopt;
    return "no answer";
  });
  HttpResponse both = get(server->port(), "/readyz");
  EXPECT_EQ(both.status, 503);
  EXPECT_EQ(both.body, "informers: caches not synced: bpfchains\napiserver: no answer\n");
  connected = true;
  HttpResponse one = get(server->port(), "/readyz");
  EXPECT_EQ(one.status, 503);
  EXPECT_EQ(one.body, "informers: caches not synced: bpfchains\n");
  synced = true;
  HttpResponse ready = get(server->port(), "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ok\n");
  // Readiness does not touch liveness.
  synced = false;
  EXPECT_EQ(get(server->port(), "/healthz").status, 200);
}

TEST(MetricsServer, HealthzIsOkWhileServingAndFailsWithALivenessCheck) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  HttpResponse ok = get(server->port(), "/healthz");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "ok\n");
  std::atomic<bool> ticking{true};
  server->addLivenessCheck("main-loop", [&]() -> std::optional<std::string> {
    if (ticking)
      return std::nullopt;
    return "no tick for 60 s";
  });
  EXPECT_EQ(get(server->port(), "/healthz").status, 200);
  ticking = false;
  HttpResponse stuck = get(server->port(), "/healthz");
  EXPECT_EQ(stuck.status, 503);
  EXPECT_EQ(stuck.body, "main-loop: no tick for 60 s\n");
  EXPECT_EQ(get(server->port(), "/readyz").status, 200);
}

TEST(MetricsServer, AnswersOtherPathsWith404AndOtherMethodsWith405) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  for (const char* path : {"/", "/metric", "/metrics/", "/metrics/x", "/healthz/x", "/favicon.ico"})
    EXPECT_EQ(get(server->port(), path).status, 404) << path;
  EXPECT_EQ(get(server->port(), "/metrics?name[]=up").status, 200); // a query is no new path
  EXPECT_EQ(request(server->port(), "POST", "/metrics").status, 405);
  EXPECT_EQ(request(server->port(), "DELETE", "/readyz").status, 405);
  HttpResponse head = request(server->port(), "HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST(MetricsServer, ABadAddressFailsNamingTheAddress) {
  for (const char* address : {"nonsense", "127.0.0.1:99999", ":http", "127.0.0.1:", "::1:9450",
                              "256.1.1.1:9450", "[::1]:9450"}) {
    auto server = MetricsServer::start(address);
    ASSERT_FALSE(server.ok()) << address;
    EXPECT_NE(server.error().message().find(address), std::string::npos)
        << server.error().message();
  }
  // A port someone else holds.
  auto first = startOnFreePort();
  ASSERT_TRUE(first);
  std::string taken = "127.0.0.1:" + std::to_string(first->port());
  auto second = MetricsServer::start(taken);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message().find(taken), std::string::npos) << second.error().message();
}

TEST(MetricsServer, StopsServingWhenDestroyed) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  uint16_t port = server->port();
  EXPECT_EQ(get(port, "/healthz").status, 200);
  server.reset();
  FD sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
}

TEST(MetricsServer, ConcurrentScrapesWhileCollectablesAreAdded) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  std::vector<std::shared_ptr<RunCountCollectable>> owned;
  std::atomic<int> failures{0};
  std::vector<std::thread> scrapers;
  for (int t = 0; t < 4; ++t)
    scrapers.emplace_back([&] {
      for (int i = 0; i < 25; ++i)
        failures += get(server->port(), "/metrics").status != 200;
    });
  for (int i = 0; i < 20; ++i) {
    owned.push_back(std::make_shared<RunCountCollectable>());
    server->add(owned.back());
  }
  for (auto& t : scrapers)
    t.join();
  EXPECT_EQ(failures.load(), 0);
}

// The exposition passes Prometheus's own linter: types, help, names, histogram buckets.
TEST(MetricsServer, OutputPassesPromtoolCheckMetrics) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("bpfchain_test_reconciles_total")
      .Help("Reconciles by result.")
      .Register(*registry)
      .Add({{"controller", "chain"}, {"result", "success"}})
      .Increment();
  prometheus::BuildGauge()
      .Name("bpfchain_test_info")
      .Help("Build information.")
      .Register(*registry)
      .Add({{"version", "0.1.0"}})
      .Set(1);
  auto& duration = prometheus::BuildHistogram()
                       .Name("bpfchain_test_reconcile_duration_seconds")
                       .Help("Time per reconcile.")
                       .Register(*registry)
                       .Add({{"controller", "chain"}},
                            prometheus::Histogram::BucketBoundaries{0.005, 0.05, 0.5, 5});
  duration.Observe(0.02);
  duration.Observe(3);
  auto custom = std::make_shared<RunCountCollectable>();
  custom->runs = 7;
  server->add(registry);
  server->add(custom);
  HttpResponse scraped = get(server->port(), "/metrics");
  ASSERT_EQ(scraped.status, 200);

  expectPromtoolAccepts(scraped.body);
}

// process_* as the Go client exports them, with values of this very process.
TEST(ProcessCollector, ParsesProcStatWithSpacesAndParenthesesInTheCommand) {
  // Fields 14/15 utime/stime = 250/150 ticks, 22 starttime = 5000 ticks, 23 vsize, 24 rss pages.
  std::string stat = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 "
                     "0 3 0 5000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 "
                     "1 0 0 0 0 0\n";
  auto parsed = parseProcessStat(stat, "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n", 100, 4096);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_DOUBLE_EQ(parsed->cpuSeconds, 4.0);
  EXPECT_DOUBLE_EQ(parsed->residentBytes, 2560.0 * 4096);
  EXPECT_DOUBLE_EQ(parsed->virtualBytes, 104857600.0);
  EXPECT_DOUBLE_EQ(parsed->startTimeSeconds, 1700000050.0);
}

TEST(ProcessCollector, MalformedInputIsAnErrorNamingWhat) {
  auto truncated = parseProcessStat("1 (x) S 1 2 3", "btime 1\n", 100, 4096);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.error().message().find("utime"), std::string::npos)
      << truncated.error().message();
  std::string stat = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 6 7\n";
  auto noBoot = parseProcessStat(stat, "cpu 1\n", 100, 4096);
  ASSERT_FALSE(noBoot.ok());
  EXPECT_NE(noBoot.error().message().find("btime"), std::string::npos);
  auto word = parseProcessStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0 5 6 7\n", "btime 1\n",
                               100, 4096);
  ASSERT_FALSE(word.ok());
  EXPECT_NE(word.error().message().find("not a number"), std::string::npos);
}

double sample(const std::string& body, const std::string& name) {
  auto at = body.find("\n" + name + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(body.substr(at + name.size() + 2));
}

TEST(ProcessCollector, ServesThisProcessAndPassesPromtool) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  server->add(processCollector());
  std::vector<FD> extra; // ten more open descriptors must show
  HttpResponse before = get(server->port(), "/metrics");
  for (int i = 0; i < 10; ++i)
    extra.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  HttpResponse scraped = get(server->port(), "/metrics");
  ASSERT_EQ(scraped.status, 200);
  expectPromtoolAccepts(scraped.body);
  EXPECT_GE(sample(scraped.body, "process_open_fds"), sample(before.body, "process_open_fds") + 10)
      << scraped.body;
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(sample(scraped.body, "process_max_fds"), static_cast<double>(limit.rlim_cur));
  EXPECT_GT(sample(scraped.body, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(sample(scraped.body, "process_virtual_memory_bytes"),
            sample(scraped.body, "process_resident_memory_bytes"));
  EXPECT_GE(sample(scraped.body, "process_cpu_seconds_total"), 0);
  // Started after the boot and not in the future: within this test's run.
  double now = static_cast<double>(::time(nullptr));
  double start = sample(scraped.body, "process_start_time_seconds");
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600) << "this test process started more than an hour ago?";
}

// The client-go-shaped families of common/k8s, driven through their hooks and served.
TEST(K8sMetrics, WorkQueueAndRestClientFamiliesPassPromtool) {
  auto server = startOnFreePort();
  ASSERT_TRUE(server);
  auto registry = std::make_shared<prometheus::Registry>();
  auto queue = k8s::makeWorkQueueMetrics(registry, "operator");
  auto requests = k8s::makeRequestMetrics(registry);
  server->add(registry);
  server->add(queue.inFlight);
  queue.metrics->added();
  queue.metrics->added();
  queue.metrics->taken(0.5);
  queue.metrics->retried();
  queue.metrics->setInFlightProbe([] { return k8s::WorkQueueMetrics::InFlight{7, 4}; });
  requests->observe("GET", 200, 0.01);
  requests->observe("PATCH", 409, 0.02);
  requests->observe("GET", 0, 30);
  HttpResponse scraped = get(server->port(), "/metrics");
  ASSERT_EQ(scraped.status, 200);
  expectPromtoolAccepts(scraped.body);
  const std::string& b = scraped.body;
  EXPECT_NE(b.find("bpfchain_workqueue_depth{name=\"operator\"} 1\n"), std::string::npos) << b;
  EXPECT_NE(b.find("bpfchain_workqueue_adds_total{name=\"operator\"} 2\n"), std::string::npos);
  EXPECT_NE(b.find("bpfchain_workqueue_retries_total{name=\"operator\"} 1\n"), std::string::npos);
  EXPECT_NE(b.find("bpfchain_workqueue_queue_duration_seconds_count{name=\"operator\"} 1\n"),
            std::string::npos);
  EXPECT_NE(b.find("bpfchain_workqueue_unfinished_work_seconds{name=\"operator\"} 7\n"),
            std::string::npos);
  EXPECT_NE(b.find("bpfchain_workqueue_longest_running_processor_seconds{name=\"operator\"} 4\n"),
            std::string::npos);
  EXPECT_NE(b.find("bpfchain_rest_client_requests_total{code=\"409\",method=\"PATCH\"} 1\n"),
            std::string::npos);
  EXPECT_NE(b.find("bpfchain_rest_client_requests_total{code=\"<error>\",method=\"GET\"} 1\n"),
            std::string::npos);
  EXPECT_NE(b.find("bpfchain_rest_client_request_duration_seconds_count{verb=\"GET\"} 2\n"),
            std::string::npos);
  queue.metrics->setInFlightProbe(nullptr); // as a queue's destructor does: gauges read 0
  HttpResponse after = get(server->port(), "/metrics");
  EXPECT_NE(after.body.find(
                "bpfchain_workqueue_longest_running_processor_seconds{name=\"operator\"} 0\n"),
            std::string::npos);
}

} // namespace
} // namespace bpfchain::metrics
