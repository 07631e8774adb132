// The list/watch loop follows client-go's tools/cache/reflector.go (ListAndWatch, watchHandler,
// relistResourceVersion); the cache and the handler calls are a one-resource sharedIndexInformer.
#include "k8s/informer.h"

#include <stdexcept>

namespace bpfchain::k8s {
namespace {

using Clock = std::chrono::steady_clock;

// client-go's reflector backoff manager: 800 ms doubling to 30 s, jitter factor 1.0, reset when
// nothing failed for 2 min.
constexpr Clock::duration kInitialBackoff = std::chrono::milliseconds(800);
constexpr Clock::duration kMaxBackoff = std::chrono::seconds(30);
constexpr Clock::duration kBackoffReset = std::chrono::minutes(2);
// A watch that ends sooner than this with no event is a failure, not a server timeout
// (client-go's "very short watch"; kubernetes#104171: a stale watch can end so, without an error).
constexpr Clock::duration kShortWatch = std::chrono::seconds(1);
constexpr int kMinWatchTimeoutSeconds = 300;

ApiError statusError(const Json& status) {
  ApiError error;
  if (status.is_object() && status.has_field("code") && status.at("code").is_number())
    error.status = status.at("code").as_integer();
  error.reason = stringAt(status, {"reason"});
  error.message = stringAt(status, {"message"});
  if (error.status == 0 && error.reason.empty() && error.message.empty())
    error.message = "ERROR event without a Status: " + status.serialize();
  return error;
}

// A list or watch at a resourceVersion the server has not reached yet (it answers 504 after a
// wait); client-go then relists with resourceVersion "" (isTooLargeResourceVersionError).
bool tooLarge(const ApiError& error) {
  return error.message.find("Too large resource version") != std::string::npos;
}

void stripManagedFields(Json& object) {
  if (object.is_object() && object.has_field("metadata") && object.at("metadata").is_object())
    if (object.at("metadata").has_field("managedFields"))
      object.at("metadata").erase("managedFields");
}

} // namespace

Informer::Informer(Client& client, Resource resource, InformerOptions options)
    : client_(client), resource_(std::move(resource)), options_(std::move(options)),
      random_(std::random_device{}()) {}

Informer::~Informer() {
  stop();
}

void Informer::addEventHandler(InformerEventHandler handler) {
  std::lock_guard lock(mu_);
  if (started_)
    throw std::logic_error("Informer::addEventHandler after start()");
  handlers_.push_back(std::move(handler));
}

void Informer::start() {
  std::lock_guard lock(mu_);
  if (started_ || stopping_)
    return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_)
      return;
    stopping_ = true;
  }
  changed_.notify_all();
  watchStop_.request();
  if (thread_.joinable())
    thread_.join();
}

bool Informer::hasSynced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, timeout, [this] { return synced_ || stopping_; });
  return synced_;
}

std::optional<Json> Informer::get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end())
    return std::nullopt;
  return it->second;
}

std::vector<Json> Informer::list() const {
  std::lock_guard lock(mu_);
  std::vector<Json> objects;
  objects.reserve(cache_.size());
  for (const auto& [key, object] : cache_)
    objects.push_back(object);
  return objects;
}

std::string Informer::lastSyncResourceVersion() const {
  std::lock_guard lock(mu_);
  return resourceVersion_;
}

InformerStats Informer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Informer::run() {
  bool needList = true;
  // An expiry relists at once; another one before any watch was healthy backs off first, so a
  // server that keeps answering 410 is not hammered.
  bool expiredSinceHealthy = false;
  while (!watchStop_.requested()) {
    if (needList) {
      if (auto error = listAndReplace()) {
        countError(*error);
        if (!backOff())
          return;
        continue;
      }
      needList = false;
    }
    bool healthy = false;
    WatchEnd end = watchOnce(healthy);
    if (watchStop_.requested())
      return;
    if (healthy) {
      backoff_ = {};
      expiredSinceHealthy = false;
    }
    switch (end) {
    case WatchEnd::Normal: // the server's timeout: watch on from the last resourceVersion
      break;
    case WatchEnd::Expired:
      needList = true;
      if (expiredSinceHealthy && !backOff())
        return;
      expiredSinceHealthy = true;
      break;
    case WatchEnd::Retriable: // the server is down or busy: reconnect, no relist
      if (!backOff())
        return;
      break;
    case WatchEnd::Failed: // as client-go: relist after a backoff
      needList = true;
      if (!backOff())
        return;
      break;
    }
  }
}

// Which resourceVersion a list asks for, as client-go's relistResourceVersion():
//  - the first list: "0" (or "" with consistentFirstList), paginated;
//  - later ones: the last version seen, unpaginated;
//  - once such a list failed with 410 or "too large resource version": "", paginated, until a
//    list succeeds.
std::optional<ApiError> Informer::listAndReplace() {
  std::string known = lastSyncResourceVersion();
  ListOptions request{.labelSelector = options_.labelSelector,
                      .fieldSelector = options_.fieldSelector,
                      .limit = options_.pageSize};
  if (known.empty()) {
    // client-go's first list: "0" lets the apiserver answer from its watch cache without a
    // quorum read of etcd (cheap when many clients start at once); being possibly stale is
    // harmless, since the watch then continues from the list's resourceVersion.
    request.resourceVersion = options_.consistentFirstList ? "" : "0";
  } else if (relistConsistently_) {
    request.resourceVersion = "";
  } else {
    // Not older than what the cache has seen, so the cache never goes back in time; without a
    // limit, as client-go, so that the watch cache may serve it instead of etcd.
    request.resourceVersion = known;
    request.limit = 0;
  }
  auto listed = client_.list(resource_, options_.ns, request);
  if (!listed && !request.resourceVersion.empty() &&
      (listed.error().expired() || tooLarge(listed.error()))) {
    // That version is gone (compacted) or not reached yet: a consistent read of the newest.
    {
      std::lock_guard lock(mu_);
      stats_.expired += listed.error().expired() ? 1 : 0;
      stats_.lastError = listed.error().describe();
    }
    relistConsistently_ = true;
    request.resourceVersion = "";
    request.limit = options_.pageSize;
    listed = client_.list(resource_, options_.ns, request);
  }
  if (!listed)
    return std::move(listed).error();
  relistConsistently_ = false;
  replace(std::move(listed->items), listed->resourceVersion);
  return std::nullopt;
}

void Informer::replace(std::vector<Json> items, const std::string& resourceVersion) {
  std::map<std::string, Json> previous;
  for (auto& item : items) {
    if (options_.stripManagedFields)
      stripManagedFields(item);
    std::string key = keyOf(item);
    previous.insert_or_assign(std::move(key), std::move(item));
  }
  {
    std::lock_guard lock(mu_);
    cache_.swap(previous); // the list is the cache now; `previous` holds the old cache
    resourceVersion_ = resourceVersion;
    ++stats_.lists;
  }
  // Only this thread writes cache_, so it reads it here without the lock. Both maps are ordered
  // by key: one merge pass finds the adds, the changes and the deletes.
  auto old = previous.begin();
  for (const auto& [key, object] : cache_) {
    while (old != previous.end() && old->first < key) {
      for (const auto& h : handlers_)
        if (h.onDelete)
          h.onDelete(old->second);
      ++old;
    }
    if (old != previous.end() && old->first == key) {
      if (resourceVersionOf(old->second) != resourceVersionOf(object))
        for (const auto& h : handlers_)
          if (h.onUpdate)
            h.onUpdate(old->second, object);
      ++old;
    } else {
      for (const auto& h : handlers_)
        if (h.onAdd)
          h.onAdd(object);
    }
  }
  for (; old != previous.end(); ++old)
    for (const auto& h : handlers_)
      if (h.onDelete)
        h.onDelete(old->second);

  bool first = false;
  {
    std::lock_guard lock(mu_);
    first = !synced_;
    synced_ = true;
  }
  if (first)
    changed_.notify_all();
}

Informer::WatchEnd Informer::watchOnce(bool& healthy) {
  WatchOptions request{.resourceVersion = lastSyncResourceVersion(),
                       .labelSelector = options_.labelSelector,
                       .fieldSelector = options_.fieldSelector,
                       .timeoutSeconds = static_cast<int>(nextWatchTimeout().count()),
                       .allowBookmarks = true};
  {
    std::lock_guard lock(mu_);
    ++stats_.watches;
  }
  std::optional<ApiError> streamError;
  uint64_t events = 0;
  auto started = Clock::now();
  auto result = client_.watch(
      resource_, options_.ns, request,
      [&](WatchEvent& event) {
        if (event.type == WatchEventType::Error) {
          streamError = statusError(event.object);
          return false;
        }
        ++events;
        apply(event);
        return true;
      },
      watchStop_);
  bool lasted = Clock::now() - started >= kShortWatch;
  healthy = events > 0 || (result.ok() && !streamError && lasted);

  if (result.ok() && !streamError) {
    if (events > 0 || lasted)
      return WatchEnd::Normal;
    countError(ApiError{0, "", "very short watch: it ended within 1 s without an event"});
    return WatchEnd::Failed;
  }
  ApiError error = streamError ? std::move(*streamError) : std::move(result).error();
  if (error.expired()) {
    std::lock_guard lock(mu_);
    ++stats_.expired;
    stats_.lastError = error.describe();
    return WatchEnd::Expired;
  }
  countError(error);
  return error.retriable() && !tooLarge(error) ? WatchEnd::Retriable : WatchEnd::Failed;
}

void Informer::apply(WatchEvent& event) {
  std::string resourceVersion = resourceVersionOf(event.object);
  if (event.type == WatchEventType::Bookmark) {
    std::lock_guard lock(mu_);
    resourceVersion_ = resourceVersion;
    return;
  }
  if (options_.stripManagedFields)
    stripManagedFields(event.object);
  std::string key = keyOf(event.object);
  std::optional<Json> old;
  std::map<std::string, Json>::iterator at;
  {
    std::lock_guard lock(mu_);
    resourceVersion_ = resourceVersion;
    at = cache_.find(key);
    if (event.type == WatchEventType::Deleted) {
      if (at != cache_.end())
        cache_.erase(at);
    } else if (at != cache_.end()) {
      old = std::move(at->second);
      at->second = std::move(event.object);
    } else {
      at = cache_.emplace(key, std::move(event.object)).first;
    }
  }
  // As in replace(): this thread is the only writer, so `at` stays valid without the lock.
  if (event.type == WatchEventType::Deleted) {
    // The server's final state of the object: fresher than what the cache held.
    for (const auto& h : handlers_)
      if (h.onDelete)
        h.onDelete(event.object);
  } else if (!old) {
    for (const auto& h : handlers_)
      if (h.onAdd)
        h.onAdd(at->second);
  } else if (resourceVersionOf(*old) != resourceVersion) {
    for (const auto& h : handlers_)
      if (h.onUpdate)
        h.onUpdate(*old, at->second);
  }
}

void Informer::countError(const ApiError& error) {
  std::lock_guard lock(mu_);
  ++stats_.errors;
  stats_.lastError = error.describe();
}

bool Informer::backOff() {
  auto now = Clock::now();
  if (backoff_ == Clock::duration{} || now - lastBackoff_ > kBackoffReset)
    backoff_ = kInitialBackoff;
  // Jitter factor 1.0: somewhere in [d, 2d), so clients that failed together spread out.
  auto base = backoff_;
  std::uniform_int_distribution<Clock::rep> jitter(0, base.count());
  auto delay = base + Clock::duration(jitter(random_));
  backoff_ = std::min(base * 2, kMaxBackoff);
  lastBackoff_ = now;
  std::unique_lock lock(mu_);
  return !changed_.wait_for(lock, delay, [this] { return stopping_; });
}

std::chrono::seconds Informer::nextWatchTimeout() {
  if (options_.watchTimeout.count() > 0)
    return options_.watchTimeout;
  // client-go: random in [minWatchTimeout, 2 * minWatchTimeout), so watches do not all end at
  // once.
  std::uniform_int_distribution<int> spread(0, kMinWatchTimeoutSeconds - 1);
  return std::chrono::seconds(kMinWatchTimeoutSeconds + spread(random_));
}

} // namespace bpfchain::k8s
