// Errors are values at system boundaries (Katran's SystemMaybe, bpftrace's Result).
//
// Result<T> holds either a T or an Error. An Error carries the errno that caused it (0 when the
// cause is not a system call, e.g. a malformed document) and a message that says what was being
// done and to which object ("attach xdp to eth0: Device or resource busy"). Callers that add
// context wrap the message with Error::context(). Exceptions are reserved for bugs.
//
// An Error also carries a kind, set where the error happens by the code that knows what went
// wrong: status reasons are read from it, never from the message's text, so rewording a
// message cannot change a reason. context() keeps the kind and the program reference.
#pragma once

#include <cassert>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace bpfchain {

// What failed, as a chain's status reports it (reasonName gives the status reason).
enum class ErrorKind {
  Unclassified,     // reported as LoadFailed
  VerifierRejected, // the kernel's verifier refused the program
  MapArgInvalid,    // a mapArgs entry does not fit its map
  GlobalDataInvalid,
  ProgramInvalid, // no such entry or next map, not a BPF object
  LoadFailed,
  SpecInvalid,         // the chain's declaration does not parse (a newer CRD, a bad regex)
  RevisionUnavailable, // the chain revision a node refers to cannot be read (403, 404, ...)
  DigestMismatch,      // the revision read is not the one the reference names (api/chain_ref.h)
};

// The status reason of a kind: "VerifierRejected", ...; Unclassified is "LoadFailed".
const char* reasonName(ErrorKind kind);

// Which program of a chain's apply input an error is about: the message then starts with
// "programs[<index>] (<id>)".
struct ProgramRef {
  size_t index = 0;
  std::string id;
};

class Error {
public:
  Error() = default;
  Error(int code, std::string message) : code_(code), message_(std::move(message)) {}
  Error(ErrorKind kind, int code, std::string message)
      : code_(code), kind_(kind), message_(std::move(message)) {}

  // The errno of the failing call, or 0.
  int code() const { return code_; }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  const std::optional<ProgramRef>& program() const { return program_; }

  // Returns this error with "what: " in front of the message.
  Error context(const std::string& what) const& {
    Error e = *this;
    return std::move(e).context(what);
  }
  Error context(const std::string& what) && {
    message_.insert(0, what + ": ");
    return std::move(*this);
  }
  // Returns this error with its kind set (for a callee's error whose kind only the caller
  // knows, e.g. any failure to apply a mapArgs entry is MapArgInvalid).
  Error withKind(ErrorKind kind) && {
    kind_ = kind;
    return std::move(*this);
  }
  // Returns this error as being about `program`; the caller has put "programs[<index>]
  // (<id>)" in front of the message.
  Error about(ProgramRef program) && {
    program_ = std::move(program);
    return std::move(*this);
  }

private:
  int code_ = 0;
  ErrorKind kind_ = ErrorKind::Unclassified;
  std::string message_;
  std::optional<ProgramRef> program_;
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
