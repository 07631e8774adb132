// A small, complete Kubernetes API client (DESIGN.md section 6) on cpprestsdk: any resource
// by group/version/plural; get, paginated list, create, update, the status subresource, merge
// and JSON patches, server-side apply, delete, and watch. Objects are JSON. Every call
// returns its result or an ApiError carrying the HTTP status and the Status object's reason
// and message. Thread-safe: one Client serves every thread of a process.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "k8s/api_error.h"
#include "k8s/config.h"
#include "k8s/object.h"
#include "k8s/resource.h"
#include "k8s/write_version.h"

namespace bpfchain::k8s {

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  int64_t limit = 500; // page size; pages are followed until the list is complete
  // "" = a consistent read from etcd; "0" = any version, possibly from the watch cache.
  std::string resourceVersion;
};

struct ObjectList {
  std::vector<Json> items;
  std::string resourceVersion; // where a watch continues from
};

enum class PatchType { Merge, Json };

struct WriteOptions {
  std::string fieldManager;
  std::string subresource; // e.g. "status"
};

struct DeleteOptions {
  std::string propagationPolicy;           // Background, Foreground, Orphan; "" = default
  std::string preconditionResourceVersion; // delete only this version
};

struct WatchOptions {
  std::string resourceVersion; // continue after this version (from a list or an event)
  std::string labelSelector;
  std::string fieldSelector;
  int timeoutSeconds = 300; // the server ends the watch after this; then watch again
  bool allowBookmarks = true;
};

enum class WatchEventType { Added, Modified, Deleted, Bookmark, Error };

struct WatchEvent {
  WatchEventType type;
  Json object; // the object; for Error, a Status
};

// Ends a watch from another thread: request() makes the watch return promptly.
class WatchStop {
public:
  WatchStop();
  void request() const;
  bool requested() const;

private:
  friend class Client;
  struct State;
  std::shared_ptr<State> state_;
};

class Client {
public:
  static Result<std::unique_ptr<Client>> create(const Config& config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Config& config() const;

  ApiResult<Json> get(const Resource& r, const std::string& ns, const std::string& name,
                      const std::string& subresource = "");
  // Every page, as one list.
  ApiResult<ObjectList> list(const Resource& r, const std::string& ns,
                             const ListOptions& options = {});
  // The namespace comes from the object's metadata.
  ApiResult<Json> create(const Resource& r, const Json& object, const WriteOptions& options = {});
  // PUT: the object must carry metadata.resourceVersion; a stale one fails with conflict().
  ApiResult<Json> update(const Resource& r, const Json& object, const WriteOptions& options = {});
  ApiResult<Json> patch(const Resource& r, const std::string& ns, const std::string& name,
                        PatchType type, const Json& patch, const WriteOptions& options = {});
  // Server-side apply of `object` (apiVersion, kind, metadata.name, and the fields this
  // manager owns); `force` takes fields over from other managers instead of a conflict().
  ApiResult<Json> apply(const Resource& r, const Json& object, const std::string& fieldManager,
                        bool force, const std::string& subresource = "");
  ApiResult<void> remove(const Resource& r, const std::string& ns, const std::string& name,
                         const DeleteOptions& options = {});

  // Streams events to `onEvent` until the server ends the watch (success), the request fails,
  // `onEvent` returns false, or `stop` is requested. An ERROR event is passed to onEvent
  // like the others (an expired resourceVersion arrives that way, or as an expired() error).
  ApiResult<void> watch(const Resource& r, const std::string& ns, const WatchOptions& options,
                        const std::function<bool(WatchEvent&)>& onEvent,
                        const WatchStop& stop = WatchStop());

private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// client-go's RetryOnConflict with DefaultRetry: runs `attempt` (which must re-read the
// object each time) until it succeeds or fails other than by a conflict, at most `attempts`
// times, 10 ms apart with 10% jitter.
template <typename T>
ApiResult<T> retryOnConflict(const std::function<ApiResult<T>()>& attempt, int attempts = 5) {
  for (int i = 1;; ++i) {
    ApiResult<T> result = attempt();
    if (result.ok() || !result.error().conflict() || i >= attempts)
      return result;
    std::this_thread::sleep_for(std::chrono::microseconds(10000 + std::rand() % 1000));
  }
}

// The whole status of an object its one writer keeps, written with a PUT of the status
// subresource: `seen` (the object as the writer's watch shows it) with `status` in place of
// its own, sent with the resourceVersion `version` chooses; on a conflict (someone wrote since),
// the object is read again and written, as retryOnConflict does. A PUT's body is decoded once;
// a merge patch also costs the API server an encode of the stored object and a merge (12-18%
// of its CPU when 1,000 nodes report). `version` records an accepted write.
ApiResult<Json> updateStatus(Client& client, const Resource& r, Json seen, const Json& status,
                             const std::string& fieldManager, WriteVersion& version);

} // namespace bpfchain::k8s
