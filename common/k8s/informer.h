// client-go's shared informer reduced to one resource (DESIGN.md section 6): a local cache of
// the objects of one collection (namespace, label and field selector) kept up to date by list
// then watch, with handlers told of every change.
//
// Contract:
//  - Register handlers, then start() once; stop() (or the destructor) ends the informer's thread
//    and joins it: at once while watching or backing off, after the current request while
//    listing (lists cannot be cancelled; the client's request timeout bounds them). An informer
//    does not start again after stop().
//  - Handlers run on the informer's thread, one at a time, in the order of the events; the cache
//    already shows an event when its handler runs. They must not throw, nor call stop().
//  - The first list delivers onAdd for each object, in key order; hasSynced() turns true after
//    those calls.
//  - Watch events: ADDED -> onAdd, MODIFIED -> onUpdate(old, new), DELETED -> onDelete with the
//    server's final state. Bookmarks only advance lastSyncResourceVersion().
//  - A relist replaces the cache and delivers the difference, in key order: onAdd for new keys,
//    onUpdate for a changed resourceVersion, then onDelete, with the last state the cache knew,
//    for keys that vanished meanwhile.
//  - When a watch ends: normally (the server's timeout) -> watch again from the last version, at
//    once; 410 Expired/Gone (an HTTP error or an ERROR event) -> relist at once (a second 410
//    before any healthy watch backs off first); transport error, 429, 5xx -> back off, then
//    watch again from the last version; anything else, or a "very short watch" (ended within
//    1 s with no event) -> back off, then relist. A failed list backs off and lists again.
//  - Backoff is client-go's reflector's: 800 ms doubling to 30 s, plus 0..100% jitter; back to
//    800 ms after a healthy watch (one that delivered an event or stayed open 1 s) or 2 min
//    without a failure. The informer never gives up; stats() tells what it went through.
//  - get(), list(), hasSynced(), lastSyncResourceVersion() and stats() are thread-safe and
//    return copies.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client.h"

namespace bpfchain::k8s {

struct InformerOptions {
  std::string ns; // "" = every namespace (and the only choice for cluster-scoped resources)
  std::string labelSelector;
  std::string fieldSelector;
  // How long the server keeps one watch open; 0 = random in [5, 10) min, as client-go.
  std::chrono::seconds watchTimeout{0};
  int64_t pageSize = 500; // for the paginated lists
  // The first list: false = resourceVersion "0", as client-go: the apiserver answers from its
  // watch cache, without reading etcd, in one piece (it ignores the page size then); true = ""
  // (a consistent read, paginated). Later lists: see informer.cpp, listAndReplace().
  bool consistentFirstList = false;
  // Drop metadata.managedFields from every object before it is cached or handed to a handler,
  // as controller-runtime's TransformStripManagedFields: server-side apply bookkeeping that
  // controllers rarely read, and often half of an object (a BpfNodeConfig written by 20 field
  // managers: 21 of its 46 KB). Off by default: the cache then holds what the server sent.
  bool stripManagedFields = false;
};

struct InformerEventHandler {
  std::function<void(const Json& obj)> onAdd;
  std::function<void(const Json& oldObj, const Json& newObj)> onUpdate;
  std::function<void(const Json& lastKnown)> onDelete;
};

struct InformerStats {
  uint64_t lists = 0;    // successful lists, the first one included
  uint64_t watches = 0;  // watch requests sent
  uint64_t expired = 0;  // 410 Expired/Gone answers, as an HTTP error or an ERROR event
  uint64_t errors = 0;   // other failed lists and watches (each followed by a backoff)
  std::string lastError; // the latest of those, for diagnostics
};

class Informer {
public:
  // `client` must outlive the informer.
  Informer(Client& client, Resource resource, InformerOptions options = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Before start() only: a handler added later would miss events (a bug; throws logic_error).
  void addEventHandler(InformerEventHandler handler);
  void start();
  void stop();

  bool hasSynced() const;
  // True once synced; false when `timeout` passed first or the informer stopped.
  bool waitForSync(std::chrono::milliseconds timeout) const;

  // The cached object at keyOf() key ("namespace/name" or "name").
  std::optional<Json> get(const std::string& key) const;
  // Every cached object, ordered by key.
  std::vector<Json> list() const;
  // The resourceVersion of the latest list, event or bookmark seen; "" before the first list.
  std::string lastSyncResourceVersion() const;
  InformerStats stats() const;

private:
  enum class WatchEnd { Normal, Expired, Retriable, Failed };

  void run();
  // Lists and replaces the cache; the error when the list failed.
  std::optional<ApiError> listAndReplace();
  // One watch request from resourceVersion_; `healthy` when it delivered events or stayed open.
  WatchEnd watchOnce(bool& healthy);
  void replace(std::vector<Json> items, const std::string& resourceVersion);
  void apply(WatchEvent& event);
  void countError(const ApiError& error);
  // Sleeps for the next backoff step; false when stop() interrupted it.
  bool backOff();
  std::chrono::seconds nextWatchTimeout();

  Client& client_;
  const Resource resource_;
  const InformerOptions options_;
  std::vector<InformerEventHandler> handlers_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_; // synced, or stop requested
  std::map<std::string, Json> cache_;
  std::string resourceVersion_;
  bool synced_ = false;
  bool started_ = false;
  bool stopping_ = false;
  InformerStats stats_;

  // Informer thread only.
  bool relistConsistently_ = false; // the last list's resourceVersion was unavailable
  std::chrono::steady_clock::duration backoff_{};
  std::chrono::steady_clock::time_point lastBackoff_{};
  std::mt19937_64 random_;

  WatchStop watchStop_;
  std::thread thread_;
};

} // namespace bpfchain::k8s
