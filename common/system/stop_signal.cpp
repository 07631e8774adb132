#include "system/stop_signal.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <sys/eventfd.h>
#include <unistd.h>

namespace bpfchain::stop_signal {
namespace {

std::atomic<bool> stopRequested{false};
static_assert(std::atomic<bool>::is_always_lock_free);
int wakeFd = -1; // an eventfd, set by install() before any thread can read it

void wake() {
  stopRequested = true;
  if (wakeFd >= 0) {
    uint64_t one = 1;
    ssize_t ignored = ::write(wakeFd, &one, sizeof one);
    (void)ignored; // a full counter still wakes the reader
  }
}

void onSignal(int) {
  int saved = errno; // the interrupted code may read errno next
  wake();
  errno = saved;
}

} // namespace

void install() {
  if (wakeFd < 0)
    wakeFd = ::eventfd(0, EFD_CLOEXEC);
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

void request() {
  wake();
}

void wait() {
  while (!stopRequested) {
    if (wakeFd < 0) { // install() failed to make the eventfd: poll, as a last resort
      ::usleep(100 * 1000);
      continue;
    }
    uint64_t count = 0;
    if (::read(wakeFd, &count, sizeof count) < 0 && errno != EINTR)
      ::usleep(100 * 1000);
  }
}

} // namespace bpfchain::stop_signal
