// Continuous UDP traffic across a veth pair, for tests that change a chain under load and
// then prove nothing was lost: one thread sends from one namespace, another receives in the
// other, with a window of at most `window` packets in flight, so that a full veth ring can
// never drop a packet on its own (XDP on veth runs from a 256-entry ring).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "harness/netns.h"
#include "system/fd.h"
#include "system/result.h"

namespace bpfchain::testing {

class UdpTraffic {
public:
  // Sends from `from` to `toAddress`:`port`, received by a socket bound in `to`.
  static Result<std::unique_ptr<UdpTraffic>> create(const TestNetns& from, const TestNetns& to,
                                                    const std::string& toAddress, uint16_t port,
                                                    unsigned window = 32, size_t payload = 64);
  ~UdpTraffic();
  UdpTraffic(UdpTraffic&&) = delete;

  // Sends continuously until pause().
  void start();
  // Stops sending, then waits up to `timeoutMs` for the packets in flight to arrive.
  void pause(int timeoutMs = 5000);
  // Sends `count` more packets, then waits until everything sent arrived or `timeoutMs` passed.
  void sendAndWait(uint64_t count, int timeoutMs = 5000);

  // A packet is counted sent before it can be received (and uncounted if sendto fails):
  // read received() first, then sent(), and received <= sent always holds.
  uint64_t sent() const { return sent_.load(); }
  uint64_t received() const { return received_.load(); }
  // The frame size the XDP hook sees for each packet.
  size_t frameBytes() const { return 14 + 20 + 8 + payload_; }

private:
  UdpTraffic(FD tx, FD rx, uint32_t address, uint16_t port, unsigned window, size_t payload)
      : tx_(std::move(tx)), rx_(std::move(rx)), address_(address), port_(port), window_(window),
        payload_(payload) {}
  void ensureThreads();
  void sendLoop();
  void receiveLoop();
  void waitDrained(int timeoutMs);

  FD tx_, rx_;
  uint32_t address_;
  uint16_t port_;
  unsigned window_;
  size_t payload_;
  std::atomic<uint64_t> sent_{0}, received_{0}, limit_{0};
  std::atomic<bool> stopping_{false}, busy_{false};
  std::thread sender_, receiver_;
};

} // namespace bpfchain::testing
