// The only file of the packages library that sees cpprestsdk.
#include "packages/fetch.h"

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cpprest/http_client.h>
#include <fcntl.h>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "system/fd.h"

namespace bpfchain::packages {
namespace {

constexpr int kMaxRedirects = 5;
constexpr size_t kChunk = size_t{64} << 10;

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size())
    return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i])
      return false;
  return true;
}

FetchError failure(const std::string& url, const std::string& what, int status = 0,
                   bool notFound = false) {
  return FetchError{notFound, status, invalidError("fetch " + url + ": " + what)};
}

std::string tooLarge(uint64_t max) {
  return "larger than the limit of " + std::to_string(max) + " bytes";
}

std::optional<std::string> percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
    out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  if (out.find('\0') != std::string::npos)
    return std::nullopt;
  return out;
}

Result<uint64_t, FetchError> fetchFile(const std::string& url, const FetchOptions& options,
                                       const FetchSink& sink) {
  std::string_view rest = std::string_view(url).substr(7); // after "file://"
  if (startsWithNoCase(rest, "localhost/"))
    rest.remove_prefix(9);
  if (rest.empty() || rest.front() != '/')
    return failure(url, "a file URL must be file:///absolute/path");
  size_t end = rest.find_first_of("?#");
  auto path = percentDecode(rest.substr(0, end));
  if (!path)
    return failure(url, "invalid %-escape in the path");
  FD fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return FetchError{errno == ENOENT, 0, systemError(errno, "fetch " + url + ": open " + *path)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return FetchError{false, 0, systemError(errno, "fetch " + url + ": stat " + *path)};
  if (!S_ISREG(st.st_mode))
    return failure(url, *path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > options.maxBytes)
    return failure(url, tooLarge(options.maxBytes));
  std::array<char, kChunk> buf;
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return FetchError{false, 0, systemError(errno, "fetch " + url + ": read " + *path)};
    }
    if (n == 0)
      return total;
    total += static_cast<uint64_t>(n);
    if (total > options.maxBytes)
      return failure(url, tooLarge(options.maxBytes));
    if (auto r = sink(buf.data(), static_cast<size_t>(n)); !r)
      return FetchError{false, 0, r.error().context("fetch " + url)};
  }
}

// Cancels a request when its time is up (cpprestsdk's own timeout only limits each wait).
class Deadline {
public:
  Deadline(std::chrono::seconds timeout, const pplx::cancellation_token_source& source)
      : thread_([this, timeout, source]() mutable {
          std::unique_lock lock(mutex_);
          if (!cv_.wait_for(lock, timeout, [this] { return done_; })) {
            fired_ = true;
            source.cancel();
          }
        }) {}
  ~Deadline() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  bool fired() {
    std::lock_guard lock(mutex_);
    return fired_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_; // last: starts after the members it uses exist
};

// `location` (a redirect's Location header) made absolute against `base`.
std::string resolveLocation(const std::string& base, const std::string& location) {
  if (startsWithNoCase(location, "http://") || startsWithNoCase(location, "https://"))
    return location;
  size_t schemeEnd = base.find("://");
  std::string scheme = base.substr(0, schemeEnd);
  if (location.starts_with("//"))
    return scheme + ":" + location;
  size_t pathStart = base.find('/', schemeEnd + 3);
  std::string origin = pathStart == std::string::npos ? base : base.substr(0, pathStart);
  if (location.starts_with("/"))
    return origin + location;
  std::string path = pathStart == std::string::npos ? "/" : base.substr(pathStart);
  path = path.substr(0, path.find_first_of("?#"));
  return origin + path.substr(0, path.rfind('/') + 1) + location;
}

// The whole fetch's time limit: its Deadline cancels the request when the time is up.
class FetchTimer {
public:
  FetchTimer(std::chrono::seconds timeout, const pplx::cancellation_token_source& cancel)
      : timeout_(timeout), start_(std::chrono::steady_clock::now()), deadline_(timeout, cancel) {}

  bool expired() {
    return deadline_.fired() || std::chrono::steady_clock::now() - start_ >= timeout_;
  }
  FetchError timedOut(const std::string& current) const {
    return failure(current, "timed out after " + std::to_string(timeout_.count()) + " s");
  }

private:
  std::chrono::seconds timeout_;
  std::chrono::steady_clock::time_point start_;
  Deadline deadline_; // last: its thread starts after the fields above exist
};

bool isRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Where a redirect from `current` leads: refused without a Location, after kMaxRedirects hops
// and from https to anything else.
Result<std::string, FetchError> redirectTarget(const std::string& url, const std::string& current,
                                               int hop, web::http::http_response& response) {
  using namespace web::http;
  int status = response.status_code();
  auto location = response.headers().find(header_names::location);
  if (location == response.headers().end())
    return failure(current, "HTTP " + std::to_string(status) + " without a Location");
  if (hop >= kMaxRedirects)
    return failure(url, "more than " + std::to_string(kMaxRedirects) + " redirects");
  std::string next = resolveLocation(current, location->second);
  if (startsWithNoCase(current, "https://") && !startsWithNoCase(next, "https://"))
    return failure(current, "refusing a redirect from https to " + next);
  return next;
}

// Streams a 2xx response's body into the sink: at most options.maxBytes, exactly the
// Content-Length when there is one, within the fetch's time limit.
Result<uint64_t, FetchError> streamBody(const std::string& current,
                                        web::http::http_response& response,
                                        const FetchOptions& options, FetchTimer& timer,
                                        pplx::cancellation_token_source& cancel,
                                        const FetchSink& sink) {
  using namespace web::http;
  std::optional<uint64_t> length;
  if (response.headers().has(header_names::content_length))
    length = response.headers().content_length();
  if (length && *length > options.maxBytes) {
    cancel.cancel();
    return failure(current, tooLarge(options.maxBytes) + " (Content-Length " +
                                std::to_string(*length) + ")");
  }
  auto body = response.body().streambuf();
  std::array<uint8_t, kChunk> buf;
  uint64_t total = 0;
  for (;;) {
    size_t n = body.getn(buf.data(), buf.size()).get();
    if (n == 0)
      break;
    total += n;
    if (total > options.maxBytes) {
      cancel.cancel();
      return failure(current, tooLarge(options.maxBytes));
    }
    if (auto r = sink(reinterpret_cast<const char*>(buf.data()), n); !r) {
      cancel.cancel();
      return FetchError{false, response.status_code(), r.error().context("fetch " + current)};
    }
  }
  if (timer.expired())
    return timer.timedOut(current);
  if (length && total != *length)
    return failure(current, "connection closed after " + std::to_string(total) + " of " +
                                std::to_string(*length) + " bytes");
  return total;
}

Result<uint64_t, FetchError> fetchHttp(const std::string& url, const FetchOptions& options,
                                       const FetchSink& sink) {
  using namespace web::http;
  client::http_client_config config;
  // cpprestsdk's timeout limits each wait; ours (Deadline) the whole fetch, and is the one
  // meant to fire: theirs is a backstop.
  config.set_timeout(options.timeout + std::chrono::seconds(5));
  pplx::cancellation_token_source cancel;
  FetchTimer timer(options.timeout, cancel);

  std::string current = url;
  for (int hop = 0;; ++hop) {
    try {
      client::http_client client(utility::conversions::to_string_t(current), config);
      http_response response = client.request(methods::GET, U(""), cancel.get_token()).get();
      int status = response.status_code();
      if (isRedirect(status)) {
        auto next = redirectTarget(url, current, hop, response);
        if (!next)
          return next.error();
        current = *next;
        continue;
      }
      if (status < 200 || status >= 300)
        return failure(current, "HTTP " + std::to_string(status) + " " + response.reason_phrase(),
                       status, status == 404 || status == 410);
      return streamBody(current, response, options, timer, cancel, sink);
    } catch (const pplx::task_canceled&) {
      return timer.expired() ? timer.timedOut(current) : failure(current, "canceled");
    } catch (const http_exception& e) {
      if (timer.expired() || e.error_code() == std::errc::timed_out)
        return timer.timedOut(current);
      return FetchError{
          false, 0,
          Error(e.error_code().value(), "fetch " + current + ": " + std::string(e.what()))};
    } catch (const std::exception& e) { // an invalid URI, a stream error
      if (timer.expired())
        return timer.timedOut(current);
      return failure(current, e.what());
    }
  }
}

} // namespace

bool supportedUrl(std::string_view url) {
  return startsWithNoCase(url, "http://") || startsWithNoCase(url, "https://") ||
         startsWithNoCase(url, "file://");
}

std::string signatureUrl(const std::string& url) {
  size_t end = url.find_first_of("?#");
  if (end == std::string::npos)
    return url + ".sig";
  return url.substr(0, end) + ".sig" + url.substr(end);
}

Result<uint64_t, FetchError> fetch(const std::string& url, const FetchOptions& options,
                                   const FetchSink& sink) {
  if (startsWithNoCase(url, "file://"))
    return fetchFile(url, options, sink);
  if (startsWithNoCase(url, "http://") || startsWithNoCase(url, "https://"))
    return fetchHttp(url, options, sink);
  return failure(url, "unsupported URL scheme (http://, https:// or file:// only)");
}

Result<uint64_t, FetchError> fetchToFile(const std::string& url, const std::string& path,
                                         const FetchOptions& options) {
  FD fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    return FetchError{false, 0, systemError(errno, "fetch " + url + ": create " + path)};
  return fetch(url, options, [&](const char* data, size_t size) -> Result<void> {
    while (size > 0) {
      ssize_t n = ::write(fd.get(), data, size);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return systemError(errno, "write " + path);
      }
      data += n;
      size -= static_cast<size_t>(n);
    }
    return {};
  });
}

Result<std::string, FetchError> fetchToString(const std::string& url, const FetchOptions& options) {
  std::string out;
  auto r = fetch(url, options, [&](const char* data, size_t size) -> Result<void> {
    out.append(data, size);
    return {};
  });
  if (!r)
    return std::move(r).error();
  return out;
}

} // namespace bpfchain::packages
