#include "api/published_rollout.h"

namespace bpfchain::api {

const ChainRef* followedBy(const PublishedRollout& published, const std::string& node) {
  for (const auto& wave : published.waves)
    if (node <= wave.partition)
      return &wave.target;
  return published.stable ? &*published.stable : nullptr;
}

std::optional<ChainRef> refFor(const PublishedRollout& published, const std::string& node) {
  const ChainRef* ref = followedBy(published, node);
  return ref ? std::optional(*ref) : std::nullopt;
}

void dropShadowed(PublishedRollout& published) {
  std::vector<Wave> kept;
  for (auto& wave : published.waves) {
    bool shadowed = false;
    for (const auto& newer : kept)
      shadowed = shadowed || newer.partition >= wave.partition;
    if (!shadowed)
      kept.push_back(std::move(wave));
  }
  published.waves = std::move(kept);
}

k8s::Json toJson(const PublishedRollout& published) {
  k8s::Json out = k8s::Json::object();
  if (published.stable)
    out["stable"] = toJson(*published.stable);
  k8s::Json waves = k8s::Json::array();
  for (size_t i = 0; i < published.waves.size(); ++i) {
    waves[i]["target"] = toJson(published.waves[i].target);
    waves[i]["partition"] = k8s::Json::string(published.waves[i].partition);
  }
  out["waves"] = waves;
  return out;
}

Result<PublishedRollout> publishedFromJson(const k8s::Json& published, const std::string& field) {
  if (!published.is_object())
    return invalidError(field + ": an object is required");
  PublishedRollout out;
  if (published.has_field("stable")) {
    auto stable = chainRefFromJson(published.at("stable"), field + ".stable");
    if (!stable)
      return std::move(stable).error();
    out.stable = std::move(*stable);
  }
  if (published.has_field("waves")) {
    const k8s::Json& waves = published.at("waves");
    if (!waves.is_array())
      return invalidError(field + ".waves: a list is required");
    for (size_t i = 0; i < waves.size(); ++i) {
      std::string at = field + ".waves[" + std::to_string(i) + "]";
      const k8s::Json& wave = waves.at(i);
      if (!wave.is_object() || !wave.has_field("target"))
        return invalidError(at + ".target: a chain reference is required");
      auto target = chainRefFromJson(wave.at("target"), at + ".target");
      if (!target)
        return std::move(target).error();
      if (!wave.has_field("partition") || !wave.at("partition").is_string() ||
          wave.at("partition").as_string().empty())
        return invalidError(at + ".partition: a node name is required");
      out.waves.push_back({std::move(*target), wave.at("partition").as_string()});
    }
  }
  return out;
}

Result<std::optional<PublishedRollout>> publishedOf(const k8s::Json& chain) {
  if (!chain.is_object() || !chain.has_field("status") || !chain.at("status").is_object() ||
      !chain.at("status").has_field("published"))
    return std::optional<PublishedRollout>();
  auto published = publishedFromJson(chain.at("status").at("published"),
                                     "BpfChain " + k8s::nameOf(chain) + " status.published");
  if (!published)
    return std::move(published).error();
  return std::optional<PublishedRollout>(std::move(*published));
}

k8s::Json membershipEntry(const std::string& chain) {
  k8s::Json entry = k8s::Json::object();
  entry["name"] = k8s::Json::string(chain);
  entry["follow"] = k8s::Json::boolean(true);
  return entry;
}

std::span<const char* const> membershipFields() {
  static constexpr const char* kFields[] = {"name", "follow"};
  return kFields;
}

bool isMembership(const k8s::Json& entry) {
  return entry.is_object() && entry.has_field("follow") && entry.at("follow").is_boolean() &&
         entry.at("follow").as_bool() && !entry.has_field("revision");
}

Result<std::optional<ChainRef>> entryRef(const k8s::Json& entry, const std::string& node,
                                         const PublishedRollout* published,
                                         const std::string& field) {
  if (isReference(entry)) {
    auto ref = chainRefFromJson(entry, field);
    if (!ref)
      return std::move(ref).error();
    return std::optional<ChainRef>(std::move(*ref));
  }
  if (!isMembership(entry))
    return invalidError(field + ": neither a chain reference (revision) nor a membership entry "
                                "(follow: true)");
  std::string chain = k8s::stringAt(entry, {"name"});
  if (chain.empty())
    return invalidError(field + ".name: a non-empty string is required");
  if (!published)
    return Error(ErrorKind::RevisionUnavailable, 0,
                 "BpfChain " + chain + ": its published rollout (status.published) is not known");
  std::optional<ChainRef> ref = refFor(*published, node);
  if (ref && ref->name != chain)
    return invalidError("BpfChain " + chain + " status.published names chain " + ref->name);
  return ref;
}

} // namespace bpfchain::api
