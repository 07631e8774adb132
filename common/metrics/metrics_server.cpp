#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <civetweb.h>
#include <cstring>
#include <exception>
#include <mutex>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include "system/fd.h"

namespace bpfchain::metrics {

struct MetricsServer::Impl {
  mg_context* context = nullptr;
  uint16_t port = 0;
  std::string host; // as given: "", an IPv4 address or "[IPv6]"
  // civetweb's log lines while start() runs: they say why it failed, where mg_start2's own
  // error text only says "Failed to setup server ports".
  std::atomic<bool> started{false};
  std::string startLog;

  std::mutex mu; // guards the lists below
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables;
  std::vector<std::pair<std::string, ReadinessCheck>> readiness;
  std::vector<std::pair<std::string, ReadinessCheck>> liveness;
};

namespace {

constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kPlainType = "text/plain; charset=utf-8";

struct Response {
  int status = 200;
  std::string contentType = kPlainType;
  std::string body;
};

// "HOST:PORT" -> civetweb's listening_ports value ("PORT" for every interface), or why not.
Result<std::string> listeningPorts(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return invalidError("metrics address \"" + address + "\": expected HOST:PORT, e.g. :9450");
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  bool digits = !port.empty() && port.size() <= 5 &&
                port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(port) > 65535)
    return invalidError("metrics address \"" + address + "\": the port must be 0 to 65535");
  if (host.find(':') != std::string::npos && !(host.front() == '[' && host.back() == ']'))
    return invalidError("metrics address \"" + address +
                        "\": write an IPv6 host in brackets, e.g. [::1]:9450");
  if (!host.empty() && host.front() == '[' && mg_check_feature(8) == 0)
    return invalidError("metrics address \"" + address +
                        "\": this civetweb was built without IPv6; use an IPv4 address");
  return host.empty() ? port : host + ":" + port;
}

// One line per failing check, or nothing when all pass.
std::string failing(const std::vector<std::pair<std::string, ReadinessCheck>>& checks) {
  std::string lines;
  for (const auto& [name, check] : checks)
    if (auto why = check())
      lines += name + ": " + *why + "\n";
  return lines;
}

Response checksResponse(std::mutex& mu,
                        const std::vector<std::pair<std::string, ReadinessCheck>>& registered) {
  std::vector<std::pair<std::string, ReadinessCheck>> checks;
  {
    std::lock_guard lock(mu);
    checks = registered;
  }
  std::string why = failing(checks);
  if (why.empty())
    return {200, kPlainType, "ok\n"};
  return {503, kPlainType, why};
}

Response metricsResponse(MetricsServer::Impl& impl) {
  std::vector<std::shared_ptr<prometheus::Collectable>> live;
  {
    std::lock_guard lock(impl.mu);
    std::erase_if(impl.collectables, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : impl.collectables)
      if (auto collectable = weak.lock())
        live.push_back(std::move(collectable));
  }
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : live) {
    auto collected = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  }
  std::ostringstream body;
  prometheus::TextSerializer().Serialize(body, families);
  return {200, kMetricsType, std::move(body).str()};
}

Response route(MetricsServer::Impl& impl, const std::string& method, const std::string& path) {
  bool known = path == "/metrics" || path == "/healthz" || path == "/readyz";
  if (!known)
    return {404, kPlainType, "404 page not found\n"};
  if (method != "GET" && method != "HEAD")
    return {405, kPlainType, "method not allowed\n"};
  if (path == "/metrics")
    return metricsResponse(impl);
  return checksResponse(impl.mu, path == "/healthz" ? impl.liveness : impl.readiness);
}

int handle(mg_connection* connection, void* data) {
  auto& impl = *static_cast<MetricsServer::Impl*>(data);
  const mg_request_info* request = mg_get_request_info(connection);
  std::string method = request->request_method ? request->request_method : "";
  Response response;
  try {
    response = route(impl, method, request->local_uri ? request->local_uri : "");
  } catch (const std::exception& e) {
    // A collectable or check that throws is a bug; it must not take the server thread (and,
    // through civetweb's C frames, the process) down with it.
    response = {500, kPlainType, std::string("internal error: ") + e.what() + "\n"};
  }
  std::string length = std::to_string(response.body.size());
  mg_response_header_start(connection, response.status);
  mg_response_header_add(connection, "Content-Type", response.contentType.c_str(), -1);
  mg_response_header_add(connection, "Content-Length", length.c_str(), -1);
  mg_response_header_add(connection, "Cache-Control", "no-store", -1);
  mg_response_header_send(connection);
  if (method != "HEAD")
    mg_write(connection, response.body.data(), response.body.size());
  return response.status;
}

// Connects to the server once and closes. civetweb's listener polls with a 2 s timeout and
// only then sees mg_stop()'s flag; a connection ends that wait at once.
void wake(const std::string& host, uint16_t port) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string ip = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : host;
  if (ip.size() > 2 && ip.front() == '[') {
    ip = ip.substr(1, ip.size() - 2);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&storage);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    if (ip == "::")
      ip = "::1";
    if (::inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) != 1)
      return;
    length = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&storage);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) != 1)
      return;
    length = sizeof *a4;
  }
  FD sock(::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock)
    (void)::connect(sock.get(), reinterpret_cast<sockaddr*>(&storage), length);
}

// civetweb's own log lines would go to stderr; start() reports its errors instead, and later
// ones (a client that hung up) are of no interest.
int quiet(const mg_connection* connection, const char* message) {
  const mg_context* context = connection ? mg_get_context(connection) : nullptr;
  auto* impl = context ? static_cast<MetricsServer::Impl*>(mg_get_user_data(context)) : nullptr;
  if (impl && !impl->started && message) // start() runs on one thread
    impl->startLog += (impl->startLog.empty() ? "" : "; ") + std::string(message);
  return 1;
}

} // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& address) {
  auto ports = listeningPorts(address);
  if (!ports)
    return std::move(ports).error();
  static std::once_flag initialized;
  std::call_once(initialized, [] { mg_init_library(0); });

  auto impl = std::make_unique<Impl>();
  impl->host = address.substr(0, address.rfind(':'));
  const char* options[] = {
      "listening_ports", ports->c_str(),      "num_threads", "4",    "request_timeout_ms",
      "10000",           "enable_keep_alive", "no",          nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = quiet;
  mg_init_data init{&callbacks, impl.get(), options};
  unsigned code = 0;
  char text[256] = {};
  mg_error_data error{&code, text, sizeof text};
  impl->context = mg_start2(&init, &error);
  if (!impl->context) {
    std::string why = !impl->startLog.empty() ? impl->startLog
                      : text[0]               ? std::string(text)
                                              : "civetweb failed to start";
    return Error(0, "metrics server on " + address + ": " + why);
  }
  impl->started = true;
  // One handler for every path, so that this file, not civetweb, decides what is 404.
  mg_set_request_handler(impl->context, "**", handle, impl.get());
  mg_server_port bound{};
  if (mg_get_server_ports(impl->context, 1, &bound) != 1 || bound.port <= 0) {
    mg_stop(impl->context);
    return Error(0, "metrics server on " + address + ": no listening port");
  }
  impl->port = static_cast<uint16_t>(bound.port);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  // mg_stop() joins the server's threads; the listener notices only at its next poll (up to
  // 2 s), so a helper pokes it with connections until mg_stop() has returned.
  std::atomic<bool> stopped{false};
  std::thread poke([&] {
    while (!stopped) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!stopped)
        wake(impl_->host, impl_->port);
    }
  });
  mg_stop(impl_->context);
  stopped = true;
  poke.join();
}

uint16_t MetricsServer::port() const {
  return impl_->port;
}

void MetricsServer::add(std::weak_ptr<prometheus::Collectable> collectable) {
  std::lock_guard lock(impl_->mu);
  impl_->collectables.push_back(std::move(collectable));
}

void MetricsServer::addReadinessCheck(std::string name, ReadinessCheck check) {
  std::lock_guard lock(impl_->mu);
  impl_->readiness.emplace_back(std::move(name), std::move(check));
}

void MetricsServer::addLivenessCheck(std::string name, ReadinessCheck check) {
  std::lock_guard lock(impl_->mu);
  impl_->liveness.emplace_back(std::move(name), std::move(check));
}

} // namespace bpfchain::metrics
