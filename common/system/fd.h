// FD owns one file descriptor (a socket, a BPF program or map, a netns handle) and closes it
// when it goes out of scope. Move-only, like bpftrace's util::FD.
#pragma once

#include <utility>

namespace bpfchain {

class FD {
public:
  FD() = default;
  explicit FD(int fd) : fd_(fd) {}
  ~FD() { reset(); }

  FD(const FD&) = delete;
  FD& operator=(const FD&) = delete;
  FD(FD&& other) noexcept : fd_(other.release()) {}
  FD& operator=(FD&& other) noexcept {
    if (this != &other)
      reset(other.release());
    return *this;
  }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // Closes the current descriptor, if any, and owns fd instead.
  void reset(int fd = -1);

private:
  int fd_ = -1;
};

} // namespace bpfchain
