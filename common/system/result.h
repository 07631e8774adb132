// Errors are values at system boundaries (Katran's SystemMaybe, bpftrace's Result).
//
// Result<T> holds either a T or an Error. An Error carries the errno that caused it (0 when the
// cause is not a system call, e.g. a malformed document) and a message that says what was being
// done and to which object ("attach xdp to eth0: Device or resource busy"). Callers that add
// context wrap the message with Error::context(). Exceptions are reserved for bugs.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace bpfchain {

class Error {
public:
  Error() = default;
  Error(int code, std::string message) : code_(code), message_(std::move(message)) {}

  // The errno of the failing call, or 0.
  int code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns this error with "what: " in front of the message.
  Error context(const std::string& what) const& { return Error(code_, what + ": " + message_); }
  Error context(const std::string& what) && {
    message_.insert(0, what + ": ");
    return std::move(*this);
  }

private:
  int code_ = 0;
  std::string message_;
};

// An error from a failed system call: "<what>: <strerror(code)>".
Error systemError(int code, const std::string& what);
// An error that is not a system call's (invalid input, protocol violation).
inline Error invalidError(std::string message) {
  return Error(0, std::move(message));
}

// E is the error type: Error, or a domain's richer one (k8s::ApiError).
template <typename T, typename E = Error> class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}
  Result(E error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  E&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

private:
  std::variant<T, E> v_;
};

template <typename E> class [[nodiscard]] Result<void, E> {
public:
  Result() = default;
  Result(E error) : error_(std::move(error)), failed_(true) {}

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const E& error() const& {
    assert(failed_);
    return error_;
  }
  E&& error() && {
    assert(failed_);
    return std::move(error_);
  }

private:
  E error_{};
  bool failed_ = false;
};

} // namespace bpfchain
