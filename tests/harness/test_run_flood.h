// A flood of one packet through an XDP program by BPF_PROG_TEST_RUN, back to back from one
// thread, counting each run's verdict: exact counts of what passed and what was dropped while
// the program behind the descriptor (a chain's root) changes. Tests and benchmarks that need
// every verdict use it instead of a veth, whose rings and sockets lose count under load.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "harness/packet_builder.h"

namespace bpfchain::testing {

class TestRunFlood {
public:
  // `programFd` stays owned by the caller and must outlive the flood.
  TestRunFlood(int programFd, Bytes frame) : programFd_(programFd), frame_(std::move(frame)) {}
  ~TestRunFlood() { stop(); }
  TestRunFlood(TestRunFlood&&) = delete;

  void start();
  // Stops between two packets and returns once the flood stands still; resume() goes on.
  void hold();
  void resume() { held_ = false; }
  // Stops; returns the seconds from start() to the last packet.
  double stop();

  uint64_t passed() const { return passed_; }   // XDP_PASS
  uint64_t dropped() const { return dropped_; } // XDP_DROP
  uint64_t errors() const { return errors_; }   // a failed run, or another verdict

private:
  void run();

  int programFd_;
  Bytes frame_;
  std::thread thread_;
  std::atomic<bool> stopping_{false}, held_{false}, holding_{false};
  std::atomic<uint64_t> passed_{0}, dropped_{0}, errors_{0};
  std::chrono::steady_clock::time_point started_;
  double seconds_ = 0;
};

} // namespace bpfchain::testing
