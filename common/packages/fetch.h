// Downloads a package (or its .sig) from http://, https:// or file:// URLs, with a size limit and
// a deadline. cpprestsdk stays inside fetch.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "system/result.h"

namespace bpfchain::packages {

struct FetchOptions {
  uint64_t maxBytes = 64ull << 20;
  // For the whole fetch: connecting, redirects and the body.
  std::chrono::seconds timeout{30};
};

struct FetchError {
  // The resource does not exist: HTTP 404 or 410, or ENOENT for file://. A missing .sig is
  // told apart from a failing server by this.
  bool notFound = false;
  int httpStatus = 0; // 0 when no HTTP response was received
  Error error;        // names the URL and what went wrong
};

// Receives the body in pieces; an error stops the download.
using FetchSink = std::function<Result<void>(const char* data, size_t size)>;

// Fetches `url` into `sink`. http(s): GET, up to 5 redirects (never from https to http), a
// non-2xx status is an error naming the URL and the status. file://: file:///absolute/path (or
// file://localhost/...), %-escapes decoded. Returns the number of bytes received.
Result<uint64_t, FetchError> fetch(const std::string& url, const FetchOptions& options,
                                   const FetchSink& sink);

// Fetches `url` into a new file at `path` (created with O_EXCL, mode 0600).
Result<uint64_t, FetchError> fetchToFile(const std::string& url, const std::string& path,
                                         const FetchOptions& options);

// Fetches `url` into memory (for small things: signatures).
Result<std::string, FetchError> fetchToString(const std::string& url, const FetchOptions& options);

// The URL's scheme is one fetch() supports.
bool supportedUrl(std::string_view url);

// The URL of the signature of the package at `url`: ".sig" appended to the path (before any
// query or fragment).
std::string signatureUrl(const std::string& url);

} // namespace bpfchain::packages
