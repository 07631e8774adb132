// The only file that sees cpprestsdk's HTTP client (and Boost.Asio's TLS context under it).
#include "k8s/client.h"

#include <algorithm>
#include <boost/asio/ssl.hpp>
#include <cpprest/http_client.h>
#include <mutex>
#include <optional>

#include "k8s/request_metrics.h"
#include "k8s/watch_lines.h"
#include "system/file.h"
#include "system/log.h"

namespace bpfchain::k8s {
namespace {

using web::http::http_request;
using web::http::http_response;
using web::http::method;
using web::http::methods;
using web::http::client::http_client;
using web::http::client::http_client_config;

constexpr auto kTokenRefresh = std::chrono::minutes(1);
constexpr uint64_t kMaxTokenBytes = 1 << 20; // service-account tokens are ~1 KB

std::mutex requestMetricsMu;
std::shared_ptr<RequestMetrics> installedRequestMetrics; // guarded by requestMetricsMu

// Reports one request (code 0: no response) to the installed RequestMetrics, if any.
void observeRequest(const method& m, int code, std::chrono::steady_clock::time_point start) {
  std::shared_ptr<RequestMetrics> metrics;
  {
    std::lock_guard lock(requestMetricsMu);
    metrics = installedRequestMetrics;
  }
  if (metrics)
    metrics->observe(
        utility::conversions::to_utf8string(m), code,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

std::string encode(const std::string& value) {
  return utility::conversions::to_utf8string(
      web::uri::encode_data_string(utility::conversions::to_string_t(value)));
}

class Query {
public:
  Query& add(const std::string& key, const std::string& value) {
    if (!value.empty())
      text_ += (text_.empty() ? "?" : "&") + key + "=" + encode(value);
    return *this;
  }
  const std::string& str() const { return text_; }

private:
  std::string text_;
};

ApiError errorFrom(int status, const std::string& body, const std::string& phrase) {
  ApiError error{status, "", ""};
  try {
    Json parsed = Json::parse(utility::conversions::to_string_t(body));
    if (parsed.is_object() && parsed.has_field("kind") &&
        parsed.at("kind").as_string() == "Status") {
      error.reason = parsed.has_field("reason") ? parsed.at("reason").as_string() : "";
      error.message = parsed.has_field("message") ? parsed.at("message").as_string() : "";
      return error;
    }
  } catch (const std::exception&) {
  }
  error.reason = phrase;
  error.message = body.size() > 512 ? body.substr(0, 512) + "..." : body;
  return error;
}

std::optional<WatchEventType> eventType(const std::string& type) {
  if (type == "ADDED")
    return WatchEventType::Added;
  if (type == "MODIFIED")
    return WatchEventType::Modified;
  if (type == "DELETED")
    return WatchEventType::Deleted;
  if (type == "BOOKMARK")
    return WatchEventType::Bookmark;
  if (type == "ERROR")
    return WatchEventType::Error;
  return std::nullopt;
}

} // namespace

struct WatchStop::State {
  std::atomic<bool> requested{false};
  pplx::cancellation_token_source source;
};

WatchStop::WatchStop() : state_(std::make_shared<State>()) {}
void WatchStop::request() const {
  state_->requested = true;
  state_->source.cancel();
}
bool WatchStop::requested() const {
  return state_->requested;
}

struct Client::Impl {
  Config config;
  std::unique_ptr<http_client> client;
  std::mutex tokenMutex;
  std::string token;
  std::chrono::steady_clock::time_point tokenRead;
  std::string tokenError; // the last failure to read tokenFile

  http_client_config clientConfig(std::chrono::milliseconds timeout) const {
    http_client_config c;
    c.set_timeout(timeout);
    c.set_validate_certificates(!config.insecureSkipTlsVerify);
    Config tls = config;
    c.set_ssl_context_callback([tls](boost::asio::ssl::context& ctx) {
      if (!tls.caPem.empty())
        ctx.add_certificate_authority(boost::asio::buffer(tls.caPem));
      else
        ctx.set_default_verify_paths();
      if (!tls.clientCertPem.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(tls.clientCertPem));
        ctx.use_private_key(boost::asio::buffer(tls.clientKeyPem), boost::asio::ssl::context::pem);
      }
    });
    return c;
  }

  std::unique_ptr<http_client> makeClient(std::chrono::milliseconds timeout) const {
    return std::make_unique<http_client>(utility::conversions::to_string_t(config.server),
                                         clientConfig(timeout));
  }

  // The bearer token; a token file is re-read every minute, as client-go does, because
  // projected service-account tokens rotate.
  std::string bearer() {
    if (config.tokenFile.empty())
      return config.token;
    std::lock_guard lock(tokenMutex);
    auto now = std::chrono::steady_clock::now();
    if (token.empty() || now - tokenRead > kTokenRefresh) {
      auto read = readFile(config.tokenFile, kMaxTokenBytes);
      if (read) {
        while (!read->empty() && (read->back() == '\n' || read->back() == ' '))
          read->pop_back();
        if (!read->empty())
          token = std::move(*read);
        tokenError.clear();
      } else if (read.error().message() != tokenError) { // said once, not per request
        tokenError = read.error().message();
        log::warning("cannot read the bearer token; the previous one is used",
                     {{"error", tokenError}});
      }
      tokenRead = now;
    }
    return token;
  }

  http_request makeRequest(const method& m, const std::string& pathAndQuery) {
    http_request req(m);
    req.set_request_uri(utility::conversions::to_string_t(pathAndQuery));
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", "bpfchain/0.1");
    if (std::string t = bearer(); !t.empty())
      req.headers().add("Authorization", "Bearer " + t);
    return req;
  }

  ApiResult<Json> call(const method& m, const std::string& pathAndQuery,
                       const std::optional<Json>& body = std::nullopt,
                       const std::string& contentType = "application/json") {
    http_request req = makeRequest(m, pathAndQuery);
    if (body)
      req.set_body(utility::conversions::to_utf8string(body->serialize()), contentType);
    auto start = std::chrono::steady_clock::now();
    bool answered = false;
    try {
      http_response resp = client->request(req).get();
      answered = true;
      observeRequest(m, resp.status_code(), start);
      std::string text = resp.extract_utf8string(true).get();
      int status = resp.status_code();
      if (status < 200 || status >= 300)
        return errorFrom(status, text, resp.reason_phrase());
      if (text.empty())
        return Json();
      return Json::parse(utility::conversions::to_string_t(text));
    } catch (const std::exception& e) {
      if (!answered)
        observeRequest(m, 0, start);
      return ApiError{0, "", std::string(m) + " " + pathAndQuery + ": " + e.what()};
    }
  }
};

void setRequestMetrics(std::shared_ptr<RequestMetrics> metrics) {
  std::lock_guard lock(requestMetricsMu);
  installedRequestMetrics = std::move(metrics);
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::create(const Config& config) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0)
    return invalidError("server \"" + config.server + "\" is not an http(s) URL");
  if (config.clientCertPem.empty() != config.clientKeyPem.empty())
    return invalidError("a client certificate needs its key, and a key its certificate");
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  try {
    impl->client = impl->makeClient(config.requestTimeout);
  } catch (const std::exception& e) {
    return invalidError(std::string("server \"") + config.server + "\": " + e.what());
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

const Config& Client::config() const {
  return impl_->config;
}

ApiResult<Json> Client::get(const Resource& r, const std::string& ns, const std::string& name,
                            const std::string& subresource) {
  return impl_->call(methods::GET, r.objectPath(ns, name, subresource));
}

ApiResult<ObjectList> Client::list(const Resource& r, const std::string& ns,
                                   const ListOptions& options) {
  ObjectList list;
  std::string continueToken;
  do {
    Query q;
    q.add("limit", options.limit > 0 ? std::to_string(options.limit) : "")
        .add("continue", continueToken)
        .add("labelSelector", options.labelSelector)
        .add("fieldSelector", options.fieldSelector);
    if (continueToken.empty())
      q.add("resourceVersion", options.resourceVersion);
    auto page = impl_->call(methods::GET, r.collectionPath(ns) + q.str());
    if (!page)
      return std::move(page).error();
    if (page->has_field("items") && page->at("items").is_array())
      for (auto& item : page->at("items").as_array())
        list.items.push_back(std::move(item));
    list.resourceVersion = stringAt(*page, {"metadata", "resourceVersion"});
    continueToken = stringAt(*page, {"metadata", "continue"});
  } while (!continueToken.empty());
  return list;
}

ApiResult<Json> Client::create(const Resource& r, const Json& object, const WriteOptions& options) {
  return impl_->call(methods::POST,
                     r.collectionPath(namespaceOf(object)) +
                         Query().add("fieldManager", options.fieldManager).str(),
                     object);
}

ApiResult<Json> Client::update(const Resource& r, const Json& object, const WriteOptions& options) {
  return impl_->call(methods::PUT,
                     r.objectPath(namespaceOf(object), nameOf(object), options.subresource) +
                         Query().add("fieldManager", options.fieldManager).str(),
                     object);
}

ApiResult<Json> Client::patch(const Resource& r, const std::string& ns, const std::string& name,
                              PatchType type, const Json& patch, const WriteOptions& options) {
  return impl_->call(methods::PATCH,
                     r.objectPath(ns, name, options.subresource) +
                         Query().add("fieldManager", options.fieldManager).str(),
                     patch,
                     type == PatchType::Merge ? "application/merge-patch+json"
                                              : "application/json-patch+json");
}

ApiResult<Json> Client::apply(const Resource& r, const Json& object,
                              const std::string& fieldManager, bool force,
                              const std::string& subresource) {
  // JSON is YAML, so the apply content type takes the object as it is.
  return impl_->call(
      methods::PATCH,
      r.objectPath(namespaceOf(object), nameOf(object), subresource) +
          Query().add("fieldManager", fieldManager).add("force", force ? "true" : "").str(),
      object, "application/apply-patch+yaml");
}

ApiResult<void> Client::remove(const Resource& r, const std::string& ns, const std::string& name,
                               const DeleteOptions& options) {
  Json body = Json::object();
  body[U("kind")] = Json::string(U("DeleteOptions"));
  body[U("apiVersion")] = Json::string(U("v1"));
  if (!options.propagationPolicy.empty())
    body[U("propagationPolicy")] = Json::string(options.propagationPolicy);
  if (!options.preconditionResourceVersion.empty())
    body[U("preconditions")][U("resourceVersion")] =
        Json::string(options.preconditionResourceVersion);
  auto result = impl_->call(methods::DEL, r.objectPath(ns, name), body);
  if (!result)
    return std::move(result).error();
  return {};
}

ApiResult<void> Client::watch(const Resource& r, const std::string& ns, const WatchOptions& options,
                              const std::function<bool(WatchEvent&)>& onEvent,
                              const WatchStop& stop) {
  Query q;
  q.add("watch", "1")
      .add("resourceVersion", options.resourceVersion)
      .add("allowWatchBookmarks", options.allowBookmarks ? "true" : "")
      .add("timeoutSeconds", std::to_string(options.timeoutSeconds))
      .add("labelSelector", options.labelSelector)
      .add("fieldSelector", options.fieldSelector);
  std::string path = r.collectionPath(ns) + q.str();
  // A client of its own: its timeout must outlast the server's end of the watch.
  auto client = impl_->makeClient(std::chrono::seconds(options.timeoutSeconds + 60));
  pplx::cancellation_token stopToken = stop.state_->source.get_token();
  auto local = pplx::cancellation_token_source::create_linked_source(stopToken);
  auto start = std::chrono::steady_clock::now();
  bool answered = false;
  try {
    http_response resp =
        client->request(impl_->makeRequest(methods::GET, path), local.get_token()).get();
    answered = true;
    observeRequest(methods::GET, resp.status_code(), start);
    if (resp.status_code() != 200)
      return errorFrom(resp.status_code(), resp.extract_utf8string(true).get(),
                       resp.reason_phrase());
    // Events are JSON objects, one a line; chunk boundaries mean nothing (WatchLines). What
    // has arrived is taken at once; only an empty buffer waits, for one byte.
    auto body = resp.body().streambuf();
    using Traits = concurrency::streams::streambuf<uint8_t>::traits;
    WatchLines lines;
    std::string chunk(size_t{64} * 1024, '\0');
    auto* bytes = reinterpret_cast<uint8_t*>(chunk.data());
    while (!stop.requested()) {
      if (size_t avail = body.in_avail(); avail > 0) {
        // No wait: the buffer holds at least this much, so the task is already complete.
        size_t n = body.getn(bytes, std::min(avail, chunk.size())).get();
        lines.append(std::string_view(chunk.data(), n));
      } else {
        auto c = body.bumpc().get();
        if (c == Traits::eof())
          return {};
        char byte = static_cast<char>(c);
        lines.append(std::string_view(&byte, 1));
      }
      while (auto line = lines.next()) {
        if (stop.requested())
          break;
        Json parsed = Json::parse(utility::conversions::to_string_t(*line));
        auto type = eventType(stringAt(parsed, {"type"}));
        if (!type || !parsed.has_field("object"))
          continue;
        WatchEvent event{*type, std::move(parsed.at("object"))};
        if (!onEvent(event)) {
          local.cancel();
          return {};
        }
      }
    }
    local.cancel();
    return {};
  } catch (const std::exception& e) {
    if (stop.requested())
      return {};
    if (!answered)
      observeRequest(methods::GET, 0, start);
    return ApiError{0, "", "watch " + path + ": " + e.what()};
  }
}

ApiResult<Json> updateStatus(Client& client, const Resource& r, Json seen, const Json& status,
                             const std::string& fieldManager, WriteVersion& version) {
  std::string shown = resourceVersionOf(seen);
  seen["metadata"]["resourceVersion"] = Json::string(version.toSend(shown));
  bool reread = false;
  auto written = retryOnConflict<Json>([&]() -> ApiResult<Json> {
    if (reread) {
      auto current = client.get(r, namespaceOf(seen), nameOf(seen));
      if (!current)
        return current;
      seen = std::move(*current);
    }
    reread = true;
    seen["metadata"].erase("managedFields"); // the server keeps them as they are
    seen["status"] = status;
    return client.update(r, seen, {.fieldManager = fieldManager, .subresource = "status"});
  });
  if (written)
    version.written(std::move(shown), resourceVersionOf(*written));
  return written;
}

} // namespace bpfchain::k8s
