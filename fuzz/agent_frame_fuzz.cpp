// The agent socket's frames as the other end sent them: agent::readFrame of a Request (what the
// agent reads) and of a Response (what the CNI plugin reads) from a socket holding the input.
// A frame that decodes encodes (writeFrame) to a frame that decodes to the same message.
#include <cstdlib>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_socket/agent_socket.h"
#include "fuzz_support.h"

using namespace bpfchain;

namespace {

// A socket pair whose reading end holds `bytes` and then end-of-stream.
struct Loaded {
  int reader = -1;
  ~Loaded() {
    if (reader >= 0)
      ::close(reader);
  }
};

bool load(std::string_view bytes, Loaded& out) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    std::abort();
  int buffer = 1 << 20;
  ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
  ::setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fds[1], bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0)
      break; // larger than the socket's buffer: the frame is cut short, still a valid input
    done += static_cast<size_t>(n);
  }
  ::close(fds[1]);
  out.reader = fds[0];
  return true;
}

template <typename Message> void roundTrip(std::string_view bytes) {
  Loaded loaded;
  load(bytes, loaded);
  Message message;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  if (!agent::readFrame(loaded.reader, message, deadline))
    return;
  if (message.ByteSizeLong() > 64 * 1024)
    return; // more than a socket pair buffers: writeFrame would wait for a reader
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    std::abort();
  int buffer = 1 << 21;
  ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
  ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  Message again;
  bool ok = static_cast<bool>(agent::writeFrame(fds[0], message, deadline)) &&
            static_cast<bool>(agent::readFrame(fds[1], again, deadline));
  ::close(fds[0]);
  ::close(fds[1]);
  if (!ok || again.SerializeAsString() != message.SerializeAsString())
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  roundTrip<agent::v1::Request>(fuzz::asText(data, size));
  roundTrip<agent::v1::Response>(fuzz::asText(data, size));
  return 0;
}
