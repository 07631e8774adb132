#include "harness/test_run_flood.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

namespace bpfchain::testing {

void TestRunFlood::start() {
  started_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { run(); });
}

void TestRunFlood::hold() {
  held_ = true;
  while (!holding_ && thread_.joinable() && !stopping_)
    std::this_thread::yield();
}

double TestRunFlood::stop() {
  if (thread_.joinable()) {
    stopping_ = true;
    held_ = false;
    thread_.join();
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }
  return seconds_;
}

void TestRunFlood::run() {
  while (!stopping_) {
    if (held_) {
      holding_ = true;
      while (held_ && !stopping_)
        std::this_thread::yield();
      holding_ = false;
      continue;
    }
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame_.data(),
                .data_size_in = static_cast<uint32_t>(frame_.size()), .repeat = 1);
    bool ran = bpf_prog_test_run_opts(programFd_, &opts) == 0;
    if (ran && opts.retval == XDP_PASS)
      ++passed_;
    else if (ran && opts.retval == XDP_DROP)
      ++dropped_;
    else
      ++errors_;
  }
}

} // namespace bpfchain::testing
