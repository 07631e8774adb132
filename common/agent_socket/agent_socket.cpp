#include "agent_socket/agent_socket.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "system/fd.h"

namespace bpfchain::agent {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, rounded up so that a wait never ends just before it.
int remainingMs(Deadline deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0)
    return 0;
  return left > INT_MAX ? INT_MAX : static_cast<int>(left);
}

// Waits until `fd` reports one of `events` (or an error or hang-up, which the next call on it
// reports), the deadline passes or `cancelFd` becomes readable.
Result<void> waitFor(int fd, short events, Deadline deadline, int cancelFd) {
  for (;;) {
    int timeout = remainingMs(deadline);
    if (timeout == 0)
      return Error(ETIMEDOUT, "timed out");
    std::array<pollfd, 2> fds{pollfd{fd, events, 0}, pollfd{cancelFd, POLLIN, 0}};
    int n = ::poll(fds.data(), cancelFd >= 0 ? 2 : 1, timeout);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return systemError(errno, "poll");
    }
    if (cancelFd >= 0 && fds[1].revents != 0)
      return Error(ECANCELED, "cancelled");
    if (fds[0].revents != 0)
      return {};
  }
}

Result<void> sendAll(int fd, const std::string& data, Deadline deadline, int cancelFd) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto ready = waitFor(fd, POLLOUT, deadline, cancelFd); !ready)
        return ready;
      continue;
    }
    return systemError(errno, "send");
  }
  return {};
}

Result<void> recvAll(int fd, char* data, size_t size, Deadline deadline, int cancelFd) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::recv(fd, data + done, size - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0)
      return Error(ECONNRESET, "connection closed by the peer after " + std::to_string(done) +
                                   " of " + std::to_string(size) + " bytes");
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto ready = waitFor(fd, POLLIN, deadline, cancelFd); !ready)
        return ready;
      continue;
    }
    return systemError(errno, "recv");
  }
  return {};
}

Result<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty())
    return Error(EINVAL, "empty socket path");
  if (path.size() >= sizeof addr.sun_path)
    return Error(ENAMETOOLONG, "socket path " + path + " is longer than " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes");
  path.copy(addr.sun_path, path.size());
  return addr;
}

timeval toTimeval(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  // A zero timeout means "wait forever" to the kernel: never pass one.
  auto usec = std::max<int64_t>(left.count(), 1);
  return timeval{static_cast<time_t>(usec / 1000000), static_cast<suseconds_t>(usec % 1000000)};
}

// Creates the missing directories of `dir` with mode 0755.
Result<void> makeDirectories(const std::string& dir) {
  if (dir.empty())
    return {};
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return Error(ENOTDIR, dir + " is not a directory");
    return {};
  }
  if (errno != ENOENT)
    return systemError(errno, "stat " + dir);
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    if (auto parent = makeDirectories(dir.substr(0, slash)); !parent)
      return parent;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return systemError(errno, "mkdir " + dir);
  // The umask may have taken bits away; the contract is 0755.
  if (::chmod(dir.c_str(), 0755) != 0)
    return systemError(errno, "chmod " + dir);
  return {};
}

// Removes a socket file that nobody serves any more.
Result<void> removeStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return errno == ENOENT ? Result<void>() : systemError(errno, "stat " + path);
  if (!S_ISSOCK(st.st_mode))
    return Error(EEXIST, path + " exists and is not a socket");
  FD probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe)
    return systemError(errno, "socket");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ||
      errno == EAGAIN) // EAGAIN: a full backlog, so somebody listens
    return Error(EADDRINUSE, "another process serves " + path);
  if (errno != ECONNREFUSED)
    return systemError(errno, "probe " + path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return systemError(errno, "remove stale socket " + path);
  return {};
}

} // namespace

std::optional<std::string> invalidContainerId(const std::string& id) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (id.empty())
    return "must not be empty";
  if (!alnum(id[0]))
    return "must start with a letter or digit";
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '.' && c != '-')
      return "may contain only letters, digits, '_', '.' and '-'";
  return std::nullopt;
}

Result<void> writeFrame(int fd, const google::protobuf::MessageLite& message, Deadline deadline,
                        int cancelFd) {
  size_t size = message.ByteSizeLong();
  if (size > kMaxFrameSize)
    return Error(EMSGSIZE, "message of " + std::to_string(size) + " bytes exceeds the limit of " +
                               std::to_string(kMaxFrameSize) + " bytes");
  std::string frame(4, '\0');
  frame[0] = static_cast<char>((size >> 24) & 0xff);
  frame[1] = static_cast<char>((size >> 16) & 0xff);
  frame[2] = static_cast<char>((size >> 8) & 0xff);
  frame[3] = static_cast<char>(size & 0xff);
  if (!message.AppendToString(&frame))
    return Error(EPROTO, "cannot serialize " + message.GetTypeName());
  return sendAll(fd, frame, deadline, cancelFd);
}

Result<void> readFrame(int fd, google::protobuf::MessageLite& message, Deadline deadline,
                       int cancelFd) {
  std::array<unsigned char, 4> header{};
  if (auto r =
          recvAll(fd, reinterpret_cast<char*>(header.data()), header.size(), deadline, cancelFd);
      !r)
    return r;
  size_t size = (size_t{header[0]} << 24) | (size_t{header[1]} << 16) | (size_t{header[2]} << 8) |
                size_t{header[3]};
  if (size > kMaxFrameSize)
    return Error(EMSGSIZE, "frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                               std::to_string(kMaxFrameSize) + " bytes");
  std::string body(size, '\0');
  if (auto r = recvAll(fd, body.data(), size, deadline, cancelFd); !r)
    return r;
  if (!message.ParseFromString(body))
    return Error(EPROTO,
                 "malformed " + message.GetTypeName() + " (" + std::to_string(size) + " bytes)");
  return {};
}

Result<v1::Response> AgentClient::call(const std::string& socketPath, const v1::Request& request,
                                       std::chrono::milliseconds timeout) {
  Deadline deadline = Clock::now() + timeout;
  auto addr = unixAddress(socketPath);
  if (!addr)
    return std::move(addr).error();
  FD fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return systemError(errno, "socket");
  // A Unix connect blocks only while the listener's backlog is full; SO_SNDTIMEO bounds that.
  timeval tv = toTimeval(deadline);
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
    return systemError(errno, "setsockopt SO_SNDTIMEO");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int err = errno;
    if (err == EAGAIN || err == EINPROGRESS)
      return Error(ETIMEDOUT, "connect to " + socketPath + ": timed out");
    return systemError(err, "connect to " + socketPath);
  }
  if (auto sent = writeFrame(fd.get(), request, deadline); !sent)
    return std::move(sent).error().context("send request to " + socketPath);
  v1::Response response;
  if (auto received = readFrame(fd.get(), response, deadline); !received)
    return std::move(received).error().context("read response from " + socketPath);
  return response;
}

v1::Response dispatch(AgentHandler& handler, const v1::Request& request) {
  switch (request.kind_case()) {
  case v1::Request::kAttachPod:
    return handler.attachPod(request.attach_pod());
  case v1::Request::kDetachPod:
    return handler.detachPod(request.detach_pod());
  case v1::Request::kCheckPod:
    return handler.checkPod(request.check_pod());
  case v1::Request::kStatus:
    return handler.status(request.status());
  case v1::Request::kGc:
    return handler.gc(request.gc());
  case v1::Request::KIND_NOT_SET:
    break;
  }
  v1::Response response;
  response.set_ok(false);
  response.set_reason("UnknownRequest");
  response.set_message("the request carries no operation this agent knows");
  return response;
}

struct AgentSocketServer::Impl {
  Impl(std::string p, AgentHandler& h, AgentSocketOptions o)
      : path(std::move(p)), handler(h), options(o) {}

  // A connection whose request is still arriving.
  struct Reading {
    FD fd;
    Deadline deadline;
    std::string frame; // the bytes so far: the 4-byte header, then the body
  };
  struct Request {
    FD fd;
    v1::Request request;
  };

  void readLoop();
  // Reads what `r` has for us; returns false when the connection is done with (dropped, or its
  // request queued for a worker).
  bool readSome(Reading& r);
  void workerLoop();
  void release(); // one held connection is closed

  const std::string path;
  AgentHandler& handler;
  const AgentSocketOptions options;
  FD listenFd;
  FD stopFd; // an eventfd, readable once stop() has begun
  FD wakeFd; // an eventfd: a held connection was released
  dev_t dev = 0;
  ino_t ino = 0;

  std::atomic<unsigned> held{0}; // connections accepted and not closed yet

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Request> pending; // read, waiting for a worker
  bool stopping = false;

  std::thread reader;
  std::vector<std::thread> workers;
};

void AgentSocketServer::Impl::release() {
  held.fetch_sub(1);
  uint64_t one = 1;
  (void)!::write(wakeFd.get(), &one, sizeof one);
}

bool AgentSocketServer::Impl::readSome(Reading& r) {
  for (;;) {
    size_t want = 4;
    if (r.frame.size() >= 4) {
      auto* h = reinterpret_cast<const unsigned char*>(r.frame.data());
      size_t size =
          (size_t{h[0]} << 24) | (size_t{h[1]} << 16) | (size_t{h[2]} << 8) | size_t{h[3]};
      if (size > kMaxFrameSize)
        return false; // dropped: the client reads EOF
      want = 4 + size;
    }
    if (r.frame.size() == want) {
      Request request{std::move(r.fd), {}};
      if (!request.request.ParseFromArray(r.frame.data() + 4, static_cast<int>(want - 4)))
        return false;
      {
        std::lock_guard lock(mu);
        pending.push_back(std::move(request));
      }
      cv.notify_one();
      return false;
    }
    size_t had = r.frame.size();
    r.frame.resize(want);
    ssize_t n = ::recv(r.fd.get(), r.frame.data() + had, want - had, MSG_DONTWAIT);
    r.frame.resize(had + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0)
      continue;
    if (n < 0 && errno == EINTR)
      continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK); // else: closed or failed
  }
}

// One thread holds every connection while its request arrives (up to maxConnections, each
// until ioTimeout), so that idle or slow clients never occupy a worker: a worker only runs
// requests that are complete.
void AgentSocketServer::Impl::readLoop() {
  std::vector<Reading> reading;
  std::vector<pollfd> fds;
  for (;;) {
    auto now = Clock::now();
    std::erase_if(reading, [&](Reading& r) {
      if (r.deadline > now)
        return false;
      r.fd.reset(); // too slow: dropped with no answer
      release();
      return true;
    });
    Deadline next = now + std::chrono::hours(1);
    for (const Reading& r : reading)
      next = std::min(next, r.deadline);
    bool accepting = held.load() < options.maxConnections;
    fds.clear();
    fds.push_back(pollfd{stopFd.get(), POLLIN, 0});
    fds.push_back(pollfd{wakeFd.get(), POLLIN, 0});
    fds.push_back(pollfd{accepting ? listenFd.get() : -1, POLLIN, 0});
    for (const Reading& r : reading)
      fds.push_back(pollfd{r.fd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), std::max(remainingMs(next), 1)) < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    if (fds[0].revents != 0)
      return;
    if (fds[1].revents != 0) {
      uint64_t count = 0;
      (void)!::read(wakeFd.get(), &count, sizeof count);
    }
    for (size_t i = 0; i < reading.size(); ++i) {
      if (fds[3 + i].revents == 0 || readSome(reading[i]))
        continue;
      if (reading[i].fd) { // dropped (a queued request took its fd, and stays held)
        reading[i].fd.reset();
        release();
      }
      reading[i].deadline = Deadline::min();
    }
    std::erase_if(reading, [](const Reading& r) { return r.deadline == Deadline::min(); });
    if (fds[2].revents == 0)
      continue;
    while (held.load() < options.maxConnections) {
      int connection = ::accept4(listenFd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors or memory: back off instead of spinning on the ready listener.
          pollfd stop{stopFd.get(), POLLIN, 0};
          (void)::poll(&stop, 1, 100);
        }
        break; // EAGAIN, ECONNABORTED, EINTR: the client went away or another try will do
      }
      held.fetch_add(1);
      Reading r{FD(connection), Clock::now() + options.ioTimeout, {}};
      if (readSome(r))
        reading.push_back(std::move(r));
      else if (r.fd) {
        r.fd.reset();
        release();
      }
    }
  }
}

void AgentSocketServer::Impl::workerLoop() {
  for (;;) {
    Request request;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopping || !pending.empty(); });
      if (stopping)
        return;
      request = std::move(pending.front());
      pending.pop_front();
    }
    v1::Response response = dispatch(handler, request.request);
    // Not cancelled by stop(): the work is done, so the answer should reach the client.
    (void)writeFrame(request.fd.get(), response, Clock::now() + options.ioTimeout);
    request.fd.reset();
    release();
  }
}

AgentSocketServer::AgentSocketServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AgentSocketServer::~AgentSocketServer() {
  stop();
}

const std::string& AgentSocketServer::path() const {
  return impl_->path;
}

Result<std::unique_ptr<AgentSocketServer>> AgentSocketServer::start(const std::string& path,
                                                                    AgentHandler& handler,
                                                                    AgentSocketOptions options) {
  if (options.workers == 0)
    options.workers = 1;
  if (options.maxConnections == 0)
    options.maxConnections = 1;
  auto addr = unixAddress(path);
  if (!addr)
    return std::move(addr).error();
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    if (auto dir = makeDirectories(path.substr(0, slash)); !dir)
      return std::move(dir).error();
  if (auto stale = removeStaleSocket(path, *addr); !stale)
    return std::move(stale).error();

  auto impl = std::make_unique<Impl>(path, handler, options);
  impl->listenFd = FD(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!impl->listenFd)
    return systemError(errno, "socket");
  // bind() creates the file with the socket inode's mode (less the umask): 0600 from the start,
  // so there is no moment in which another user could connect.
  if (::fchmod(impl->listenFd.get(), 0600) != 0)
    return systemError(errno, "fchmod socket");
  if (::bind(impl->listenFd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0)
    return systemError(errno, "bind " + path);
  struct stat st {};
  if (::chmod(path.c_str(), 0600) != 0 || ::stat(path.c_str(), &st) != 0) {
    auto error = systemError(errno, "chmod " + path);
    ::unlink(path.c_str());
    return error;
  }
  impl->dev = st.st_dev;
  impl->ino = st.st_ino;
  if (::listen(impl->listenFd.get(), SOMAXCONN) != 0) {
    auto error = systemError(errno, "listen " + path);
    ::unlink(path.c_str());
    return error;
  }
  impl->stopFd = FD(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  impl->wakeFd = FD(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->stopFd || !impl->wakeFd) {
    auto error = systemError(errno, "eventfd");
    ::unlink(path.c_str());
    return error;
  }

  Impl* raw = impl.get();
  raw->reader = std::thread([raw] { raw->readLoop(); });
  raw->workers.reserve(options.workers);
  for (unsigned i = 0; i < options.workers; ++i)
    raw->workers.emplace_back([raw] { raw->workerLoop(); });
  return std::unique_ptr<AgentSocketServer>(new AgentSocketServer(std::move(impl)));
}

void AgentSocketServer::stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping)
      return;
    impl_->stopping = true;
  }
  uint64_t one = 1;
  (void)::write(impl_->stopFd.get(), &one, sizeof one);
  impl_->cv.notify_all();
  impl_->reader.join();
  for (auto& worker : impl_->workers)
    worker.join();
  impl_->pending.clear();
  impl_->listenFd.reset();
  // Remove the file only while it is still ours: a successor may already have replaced it.
  struct stat st {};
  if (::lstat(impl_->path.c_str(), &st) == 0 && st.st_dev == impl_->dev && st.st_ino == impl_->ino)
    ::unlink(impl_->path.c_str());
}

} // namespace bpfchain::agent
