#include "k8s/event_recorder.h"

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>
#include <thread>

#include "system/time.h"

namespace bpfchain::k8s {

using Clock = std::chrono::steady_clock;

namespace {

// client-go's defaultAggregateIntervalInSeconds and its LRU cache's size.
constexpr auto kAggregateInterval = std::chrono::minutes(10);
constexpr size_t kMaxKeys = 4096;
// Writes abandoned at their timeout pile up only while the API server hangs; past this many,
// record() fails at once rather than start another thread.
constexpr int kMaxPending = 8;

ApiError badRequest(const std::string& message) {
  // Rejected here, before any request: the answer the server would give a malformed Event.
  return ApiError{400, "BadRequest", "event recorder: " + message};
}

// The write itself, on its own thread: PATCH the earlier Event when there is one, else (or when
// it has gone) CREATE; a create that races another for the same name falls back to the PATCH.
ApiResult<Json> writeEvent(Client& client, const Json& event, bool repeat) {
  const std::string ns = namespaceOf(event);
  const std::string name = nameOf(event);
  auto patchCount = [&] {
    Json patch = Json::object();
    patch["count"] = event.at("count");
    patch["lastTimestamp"] = event.at("lastTimestamp");
    patch["message"] = event.at("message");
    return client.patch(resources::kEvents, ns, name, PatchType::Merge, patch);
  };
  if (repeat) {
    auto patched = patchCount();
    if (patched || !patched.error().notFound())
      return patched;
  }
  auto created = client.create(resources::kEvents, event);
  if (!created && created.error().alreadyExists())
    return patchCount();
  return created;
}

} // namespace

struct EventRecorder::Pending {
  std::mutex mutex;
  std::condition_variable done;
  int writes = 0;
};

EventRecorder::EventRecorder(Client& client, EventRecorderOptions options)
    : client_(client), options_(std::move(options)), pending_(std::make_shared<Pending>()) {}

EventRecorder::~EventRecorder() {
  std::unique_lock lock(pending_->mutex);
  pending_->done.wait(lock, [&] { return pending_->writes == 0; });
}

namespace {

// The object an Event is about, as involvedObject names it.
struct Involved {
  std::string apiVersion;
  std::string kind;
  std::string name;
  std::string nameSpace;
  std::string uid;
  std::string resourceVersion;
};

Involved involvedOf(const Json& object) {
  return Involved{stringAt(object, {"apiVersion"}),
                  stringAt(object, {"kind"}),
                  nameOf(object),
                  namespaceOf(object),
                  metadataString(object, "uid"),
                  resourceVersionOf(object)};
}

// The Event's name: the object's and the time in nanoseconds, in hex, as client-go names it.
std::string eventName(const std::string& objectName,
                      std::chrono::system_clock::time_point wallNow) {
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, ".%llx",
                static_cast<unsigned long long>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(wallNow.time_since_epoch())
                        .count()));
  return objectName + suffix;
}

} // namespace

EventRecorder::Seen EventRecorder::remember(const std::string& key, const std::string& nameSpace,
                                            const std::string& objectName,
                                            std::chrono::system_clock::time_point wallNow,
                                            bool& repeat) {
  const Clock::time_point steadyNow = Clock::now();
  std::lock_guard lock(mutex_);
  auto it = seen_.find(key);
  if (it != seen_.end() && steadyNow - it->second.last <= kAggregateInterval) {
    repeat = true;
    ++it->second.count;
    it->second.last = steadyNow;
    return it->second;
  }
  repeat = false;
  if (it == seen_.end() && seen_.size() >= kMaxKeys) {
    auto oldest = seen_.begin();
    for (auto i = seen_.begin(); i != seen_.end(); ++i)
      if (i->second.last < oldest->second.last)
        oldest = i;
    seen_.erase(oldest);
  }
  Seen entry{nameSpace.empty() ? "default" : nameSpace, eventName(objectName, wallNow), 1,
             rfc3339(wallNow), steadyNow};
  seen_[key] = entry;
  return entry;
}

ApiResult<Json> EventRecorder::record(const Json& object, EventType type, const std::string& reason,
                                      const std::string& message) {
  const Involved about = involvedOf(object);
  if (about.apiVersion.empty() || about.kind.empty() || about.name.empty())
    return badRequest("the object needs apiVersion, kind and metadata.name");
  if (reason.empty())
    return badRequest("an event needs a reason");
  const std::string typeName = type == EventType::Warning ? "Warning" : "Normal";

  // client-go's getEventKey, less the fields this recorder never sets.
  const std::string key = about.apiVersion + '\x1f' + about.kind + '\x1f' + about.nameSpace +
                          '\x1f' + about.name + '\x1f' + about.uid + '\x1f' + typeName + '\x1f' +
                          reason + '\x1f' + message;
  const auto wallNow = std::chrono::system_clock::now();

  // The cache is updated before the write, as client-go's correlator does: a failed write leaves
  // a count that the next repeat's PATCH (or its re-create) carries forward.
  bool repeat = false;
  const Seen entry = remember(key, about.nameSpace, about.name, wallNow, repeat);

  Json event = Json::object();
  event["apiVersion"] = Json::string("v1");
  event["kind"] = Json::string("Event");
  event["metadata"]["name"] = Json::string(entry.name);
  event["metadata"]["namespace"] = Json::string(entry.nameSpace);
  Json& involved = event["involvedObject"];
  involved["apiVersion"] = Json::string(about.apiVersion);
  involved["kind"] = Json::string(about.kind);
  involved["name"] = Json::string(about.name);
  if (!about.nameSpace.empty())
    involved["namespace"] = Json::string(about.nameSpace);
  if (!about.uid.empty())
    involved["uid"] = Json::string(about.uid);
  if (!about.resourceVersion.empty())
    involved["resourceVersion"] = Json::string(about.resourceVersion);
  event["type"] = Json::string(typeName);
  event["reason"] = Json::string(reason);
  event["message"] = Json::string(message);
  event["source"]["component"] = Json::string(options_.component);
  if (!options_.host.empty())
    event["source"]["host"] = Json::string(options_.host);
  event["reportingComponent"] = Json::string(options_.component);
  event["reportingInstance"] = Json::string(options_.host);
  event["firstTimestamp"] = Json::string(entry.firstTimestamp);
  event["lastTimestamp"] = Json::string(rfc3339(wallNow));
  event["count"] = Json::number(entry.count);

  const std::string what =
      "record event " + reason + " about " + about.kind + " " +
      (about.nameSpace.empty() ? about.name : about.nameSpace + "/" + about.name);
  return write(std::move(event), repeat, what);
}

ApiResult<Json> EventRecorder::write(Json event, bool repeat, const std::string& what) {
  // Bounded like the leader elector's attempts: a Client request cannot be cancelled, so the
  // caller stops waiting and the write's thread runs on, counted so the destructor waits for it.
  {
    std::lock_guard lock(pending_->mutex);
    if (pending_->writes >= kMaxPending)
      return ApiError{0, "Timeout",
                      "event recorder: " + std::to_string(kMaxPending) +
                          " earlier writes still wait for the API server"};
    ++pending_->writes;
  }
  struct Slot {
    std::mutex mutex;
    std::condition_variable ready;
    std::optional<ApiResult<Json>> result;
  };
  auto slot = std::make_shared<Slot>();
  std::thread([slot, client = &client_, pending = pending_, event = std::move(event), repeat] {
    ApiResult<Json> result = writeEvent(*client, event, repeat);
    {
      std::lock_guard lock(slot->mutex);
      slot->result = std::move(result);
      slot->ready.notify_all();
    }
    std::lock_guard lock(pending->mutex);
    --pending->writes;
    pending->done.notify_all();
  }).detach();
  std::unique_lock lock(slot->mutex);
  if (!slot->ready.wait_for(lock, options_.timeout, [&] { return slot->result.has_value(); }))
    return ApiError{0, "Timeout",
                    what + ": no answer within " + std::to_string(options_.timeout.count()) +
                        " ms"};
  return std::move(*slot->result);
}

} // namespace bpfchain::k8s
