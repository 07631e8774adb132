// What a failed Kubernetes API call returns: the HTTP status and the Status object's reason
// and message, or status 0 with a message for a failure below HTTP (connect, TLS, timeout).
#pragma once

#include <string>

#include "system/result.h"

namespace bpfchain::k8s {

struct ApiError {
  int status = 0;      // HTTP status; 0 when no response arrived
  std::string reason;  // Status.reason: NotFound, Conflict, AlreadyExists, Expired, Invalid, ...
  std::string message; // Status.message, or the transport's error

  bool transport() const { return status == 0; }
  bool notFound() const { return status == 404; }
  bool alreadyExists() const { return status == 409 && reason == "AlreadyExists"; }
  // An optimistic-concurrency failure: re-read, re-apply, retry.
  bool conflict() const { return status == 409 && reason != "AlreadyExists"; }
  // The resourceVersion asked for is gone from history: relist.
  bool expired() const { return status == 410 || reason == "Expired" || reason == "Gone"; }
  bool invalid() const { return status == 422; }
  // Worth retrying with backoff: no response, throttled, or a server-side failure.
  bool retriable() const { return status == 0 || status == 429 || status >= 500; }

  // "409 Conflict: the object has been modified; ..."
  std::string describe() const {
    return (status ? std::to_string(status) + " " : std::string()) +
           (reason.empty() ? "" : reason + ": ") + message;
  }
};

template <typename T> using ApiResult = Result<T, ApiError>;

} // namespace bpfchain::k8s
