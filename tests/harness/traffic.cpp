#include "harness/traffic.h"

#include <arpa/inet.h>
#include <chrono>
#include <functional>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <vector>

namespace bpfchain::testing {
namespace {

Result<FD> udpSocketIn(const TestNetns& ns) {
  auto guard = ns.enter();
  if (!guard)
    return std::move(guard).error();
  FD fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return systemError(errno, "socket in " + ns.name());
  return fd;
}

bool waitUntil(const std::function<bool()>& done, int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

} // namespace

Result<std::unique_ptr<UdpTraffic>> UdpTraffic::create(const TestNetns& from, const TestNetns& to,
                                                       const std::string& toAddress, uint16_t port,
                                                       unsigned window, size_t payload) {
  auto tx = udpSocketIn(from);
  if (!tx)
    return std::move(tx).error();
  auto rx = udpSocketIn(to);
  if (!rx)
    return std::move(rx).error();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, toAddress.c_str(), &addr.sin_addr) != 1)
    return invalidError("bad IPv4 address " + toAddress);
  if (::bind(rx->get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return systemError(errno, "bind " + toAddress);
  int buf = 4 << 20;
  ::setsockopt(rx->get(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  return std::unique_ptr<UdpTraffic>(
      new UdpTraffic(std::move(*tx), std::move(*rx), addr.sin_addr.s_addr, port, window, payload));
}

UdpTraffic::~UdpTraffic() {
  stopping_ = true;
  if (sender_.joinable())
    sender_.join();
  if (receiver_.joinable())
    receiver_.join();
}

void UdpTraffic::ensureThreads() {
  if (sender_.joinable())
    return;
  receiver_ = std::thread([this] { receiveLoop(); });
  sender_ = std::thread([this] { sendLoop(); });
}

void UdpTraffic::sendLoop() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = address_;
  std::vector<char> payload(payload_, 'b');
  while (!stopping_) {
    uint64_t sent = sent_.load();
    if (sent >= limit_.load() || sent - received_.load() >= window_) {
      std::this_thread::yield();
      continue;
    }
    // Counted before it leaves, so that received() never runs ahead of sent(): counted after,
    // a sender descheduled between the two let a drained pause() see one packet more received
    // than sent.
    sent_.fetch_add(1);
    if (::sendto(tx_.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                 sizeof addr) != static_cast<ssize_t>(payload_))
      sent_.fetch_sub(1);
  }
}

void UdpTraffic::receiveLoop() {
  std::vector<char> buf(payload_ + 64);
  while (!stopping_) {
    pollfd pfd{rx_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 20) != 1)
      continue;
    while (::recv(rx_.get(), buf.data(), buf.size(), MSG_DONTWAIT) > 0)
      received_.fetch_add(1);
  }
}

void UdpTraffic::waitDrained(int timeoutMs) {
  // The sender may finish one send it decided on before the limit moved: wait for it too.
  uint64_t before = 0;
  waitUntil(
      [&] {
        uint64_t sent = sent_.load();
        bool settled = sent >= limit_.load() && sent == before && received_.load() >= sent;
        before = sent;
        return settled;
      },
      timeoutMs);
}

void UdpTraffic::start() {
  limit_ = UINT64_MAX;
  ensureThreads();
}

void UdpTraffic::pause(int timeoutMs) {
  limit_ = sent_.load();
  waitDrained(timeoutMs);
}

void UdpTraffic::sendAndWait(uint64_t count, int timeoutMs) {
  limit_ = sent_.load() + count;
  ensureThreads();
  waitDrained(timeoutMs);
}

} // namespace bpfchain::testing
