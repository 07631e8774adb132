// Records core/v1 Events about objects, as client-go's record.EventRecorder does: the Event goes
// to the object's namespace ("default" for cluster-scoped objects), names the object in
// involvedObject, and repeats are folded into one Event. From client-go's EventCorrelator this
// keeps the EventLogger's aggregation only: a repeat of the same (object, type, reason, message,
// component) within 10 minutes of its last occurrence PATCHes count and lastTimestamp of the
// Event already written (re-created if it is gone, e.g. expired by the server's event TTL).
// Left out: combining similar events that differ in message, the spam filter's token bucket and
// the background retries; the cache holds at most 4096 keys, oldest evicted first.
// Errors are returned; a record() never blocks longer than its timeout (the write then finishes
// in the background and its result is dropped). Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "k8s/client.h"

namespace bpfchain::k8s {

enum class EventType { Normal, Warning };

struct EventRecorderOptions {
  std::string component; // source.component and reportingComponent, e.g. "bpfchain-operator"
  std::string host;      // source.host and reportingInstance, e.g. the node name; optional
  // The longest record() blocks its caller.
  std::chrono::milliseconds timeout = std::chrono::seconds(2);
};

class EventRecorder {
public:
  // `client` must outlive the recorder.
  EventRecorder(Client& client, EventRecorderOptions options);
  // Waits for writes that record() stopped waiting for (a Client request cannot be cancelled);
  // only an API server that hangs makes that long (up to the client's request timeout, 30 s).
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Records an event about `object` (which needs apiVersion, kind and metadata.name; its
  // namespace and uid are used when present). `reason` is UpperCamelCase, e.g. "ApplyFailed".
  // Returns the Event as written (created, or patched with the new count). An error with
  // status 0 and reason "Timeout" means no answer came within the timeout.
  ApiResult<Json> record(const Json& object, EventType type, const std::string& reason,
                         const std::string& message);

private:
  struct Seen {
    std::string nameSpace;
    std::string name;
    int64_t count = 0;
    std::string firstTimestamp;
    std::chrono::steady_clock::time_point last;
  };
  struct Pending;

  // The cache entry of `key` after this occurrence; `repeat` says whether it folds into an
  // Event already written.
  Seen remember(const std::string& key, const std::string& nameSpace, const std::string& objectName,
                std::chrono::system_clock::time_point wallNow, bool& repeat);
  // Writes `event` on its own thread and waits at most options_.timeout; `what` starts the
  // timeout's message.
  ApiResult<Json> write(Json event, bool repeat, const std::string& what);

  Client& client_;
  const EventRecorderOptions options_;
  std::mutex mutex_; // guards seen_
  std::unordered_map<std::string, Seen> seen_;
  std::shared_ptr<Pending> pending_; // writes still in flight, abandoned ones included
};

} // namespace bpfchain::k8s
