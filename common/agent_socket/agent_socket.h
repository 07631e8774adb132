// Both ends of the agent's CNI socket (DESIGN.md section 5): a Unix stream socket that carries
// one Request and one Response per connection, each framed as a 4-byte big-endian length and
// the serialized Protobuf message (common/proto/agent.proto), at most kMaxFrameSize bytes.
//
// The CNI plugin uses AgentClient::call; the node agent runs an AgentSocketServer and
// implements AgentHandler. Every wait is bounded: a silent agent cannot hang a pod ADD, and a
// stuck client cannot hold the agent. Errors are values; Error::code() is the errno that says
// what happened (ENOENT: no socket file, ECONNREFUSED: nobody listening, ETIMEDOUT: the
// deadline passed, EMSGSIZE: a frame over the limit, EPROTO: not a valid message,
// ECONNRESET: the peer closed the connection early).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proto/agent.pb.h"
#include "system/result.h"

namespace bpfchain::agent {

inline constexpr std::string_view kDefaultSocketPath = "/run/bpfchain/agent.sock";
// The largest message body either end sends or accepts.
inline constexpr size_t kMaxFrameSize = size_t{1} << 20;

using Deadline = std::chrono::steady_clock::time_point;

// Why `id` is not a CNI container id (the spec's CNI_CONTAINERID: a letter or digit first,
// then letters, digits, '_', '.' and '-'), or nullopt. Both ends check it: the agent names
// files and pins after it.
std::optional<std::string> invalidContainerId(const std::string& id);

// One framed message on a connected stream socket. Both give up at `deadline` (ETIMEDOUT), and
// when `cancelFd` (an eventfd or pipe, -1 for none) becomes readable (ECANCELED).
Result<void> writeFrame(int fd, const google::protobuf::MessageLite& message, Deadline deadline,
                        int cancelFd = -1);
Result<void> readFrame(int fd, google::protobuf::MessageLite& message, Deadline deadline,
                       int cancelFd = -1);

class AgentClient {
public:
  // Connects to the agent at `socketPath`, sends `request` and returns the agent's response.
  // Connecting, sending and receiving together take at most `timeout`.
  static Result<v1::Response> call(const std::string& socketPath, const v1::Request& request,
                                   std::chrono::milliseconds timeout);
};

// What the agent does for each request. Methods are called from the server's worker threads,
// possibly several at once (AgentSocketOptions::workers): implementations synchronise
// themselves. A Response with ok=false carries a machine-readable `reason`.
class AgentHandler {
public:
  virtual ~AgentHandler() = default;
  virtual v1::Response attachPod(const v1::AttachPod& request) = 0;
  virtual v1::Response detachPod(const v1::DetachPod& request) = 0;
  virtual v1::Response checkPod(const v1::CheckPod& request) = 0;
  virtual v1::Response status(const v1::StatusRequest& request) = 0;
  virtual v1::Response gc(const v1::GcRequest& request) = 0;
};

// Routes a request to the handler's method. A request with no kind set (e.g. from a newer
// client) gets ok=false with reason "UnknownRequest".
v1::Response dispatch(AgentHandler& handler, const v1::Request& request);

struct AgentSocketOptions {
  // How long a connection may take to deliver its request, and to take the response.
  std::chrono::milliseconds ioTimeout{2000};
  // Requests handled at once. Requests are read by one thread that holds every connection
  // until its request is complete: idle or slow clients never hold a worker.
  unsigned workers = 4;
  // Connections held at once (reading, queued or being answered); further ones wait in the
  // listen backlog. Bounds the descriptors and memory hostile clients can take.
  unsigned maxConnections = 256;
};

class AgentSocketServer {
public:
  // Serves `handler` on a new Unix socket at `path` (mode 0600; the parent directory is
  // created with mode 0755 when missing). A socket file left by a dead process is replaced;
  // a socket that someone still serves is not (EADDRINUSE), and neither is a file that is not
  // a socket (EEXIST). `handler` must outlive the server.
  static Result<std::unique_ptr<AgentSocketServer>>
  start(const std::string& path, AgentHandler& handler, AgentSocketOptions options = {});
  ~AgentSocketServer();
  AgentSocketServer(const AgentSocketServer&) = delete;
  AgentSocketServer& operator=(const AgentSocketServer&) = delete;

  // Stops accepting, waits for the requests in progress (their I/O is cancelled, their
  // handler calls complete), closes the socket and removes its file. Idempotent.
  void stop();

  const std::string& path() const;

  struct Impl;

private:
  explicit AgentSocketServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bpfchain::agent
