#include "system/fd.h"

#include <unistd.h>

namespace bpfchain {

void FD::reset(int fd) {
  if (fd_ >= 0)
    ::close(fd_); // close(2) releases the descriptor even when it reports EINTR: never retry.
  fd_ = fd;
}

} // namespace bpfchain
