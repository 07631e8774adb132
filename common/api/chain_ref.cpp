#include "api/chain_ref.h"

#include <algorithm>
#include <vector>

#include "api/resources.h"
#include "packages/digest.h"

namespace bpfchain::api {

std::string revisionName(const std::string& chain, const std::string& uid, int64_t generation) {
  return chain + "-" + uid.substr(0, 8) + "-" + std::to_string(generation);
}

std::string canonicalJson(const k8s::Json& value) {
  if (value.is_object()) {
    // cpprestsdk keeps keys sorted unless told to keep their order; sort anyway, so that the
    // digest never depends on that global setting.
    std::vector<std::pair<std::string, const k8s::Json*>> members;
    for (const auto& kv : value.as_object())
      members.emplace_back(kv.first, &kv.second);
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out = "{";
    for (size_t i = 0; i < members.size(); ++i) {
      if (i)
        out += ',';
      out += k8s::Json::string(members[i].first).serialize();
      out += ':';
      out += canonicalJson(*members[i].second);
    }
    return out + "}";
  }
  if (value.is_array()) {
    std::string out = "[";
    const auto& items = value.as_array();
    for (size_t i = 0; i < items.size(); ++i) {
      if (i)
        out += ',';
      out += canonicalJson(items.at(i));
    }
    return out + "]";
  }
  return value.serialize();
}

std::string specDigest(const k8s::Json& spec) {
  return "sha256:" + packages::sha256Hex(canonicalJson(spec));
}

k8s::Json toJson(const ChainRef& ref) {
  k8s::Json entry = k8s::Json::object();
  entry["name"] = k8s::Json::string(ref.name);
  entry["generation"] = k8s::Json::number(ref.generation);
  entry["revision"] = k8s::Json::string(ref.revision);
  entry["digest"] = k8s::Json::string(ref.digest);
  entry["priority"] = k8s::Json::number(ref.priority);
  return entry;
}

namespace {

// A reference's fields (chainRefFields()).
constexpr const char* kRefFields[] = {"name", "generation", "revision", "digest", "priority"};

} // namespace

std::span<const char* const> chainRefFields() {
  return kRefFields;
}

bool isReference(const k8s::Json& entry) {
  return entry.is_object() && entry.has_field("revision");
}

namespace {

Result<std::string> stringField(const k8s::Json& obj, const char* key, const std::string& field) {
  if (!obj.has_field(key) || !obj.at(key).is_string() || obj.at(key).as_string().empty())
    return invalidError(field + "." + key + ": a non-empty string is required");
  return obj.at(key).as_string();
}

} // namespace

Result<ChainRef> chainRefFromJson(const k8s::Json& entry, const std::string& field) {
  if (!entry.is_object())
    return invalidError(field + ": an object is required");
  ChainRef ref;
  for (const auto& kv : entry.as_object())
    if (std::find(std::begin(kRefFields), std::end(kRefFields), kv.first) == std::end(kRefFields))
      return invalidError(field + "." + kv.first +
                          ": unknown field in a chain reference (a newer operator?)");
  auto name = stringField(entry, "name", field);
  if (!name)
    return std::move(name).error();
  ref.name = std::move(*name);
  auto revision = stringField(entry, "revision", field);
  if (!revision)
    return std::move(revision).error();
  ref.revision = std::move(*revision);
  auto digest = stringField(entry, "digest", field);
  if (!digest)
    return std::move(digest).error();
  if (!digest->starts_with("sha256:") || !packages::parseSha256(digest->substr(7)))
    return invalidError(field + ".digest: \"" + *digest + "\" is not sha256:<64 hex digits>");
  ref.digest = std::move(*digest);
  if (!entry.has_field("generation") || !entry.at("generation").is_integer() ||
      entry.at("generation").as_number().to_int64() < 1)
    return invalidError(field + ".generation: a positive integer is required");
  ref.generation = entry.at("generation").as_number().to_int64();
  if (entry.has_field("priority")) {
    if (!entry.at("priority").is_integer())
      return invalidError(field + ".priority: an integer is required");
    ref.priority = entry.at("priority").as_integer();
  }
  return ref;
}

Result<ChainRevision> chainRevisionFromJson(const k8s::Json& object) {
  ChainRevision r;
  r.name = k8s::nameOf(object);
  std::string where = "ControllerRevision " + k8s::namespaceOf(object) + "/" + r.name;
  r.chain = k8s::stringAt(object, {"metadata", "labels", kChainLabel});
  if (r.chain.empty())
    return invalidError(where + ": no " + std::string(kChainLabel) + " label");
  if (!object.has_field("revision") || !object.at("revision").is_integer())
    return invalidError(where + ".revision: an integer is required");
  r.generation = object.at("revision").as_number().to_int64();
  if (!object.has_field("data") || !object.at("data").is_object())
    return invalidError(where + ".data: the chain's spec (an object) is required");
  r.spec = object.at("data");
  r.ownerUid = k8s::controllerUidOf(object);
  return r;
}

std::optional<std::string> mismatch(const ChainRef& ref, const ChainRevision& revision) {
  std::string where = "ControllerRevision " + revision.name;
  if (revision.chain != ref.name)
    return where + " belongs to chain " + revision.chain + ", not " + ref.name;
  if (revision.generation != ref.generation)
    return where + " holds generation " + std::to_string(revision.generation) + ", not " +
           std::to_string(ref.generation);
  if (std::string digest = specDigest(revision.spec); digest != ref.digest)
    return where + " has digest " + digest + ", the node's reference says " + ref.digest +
           " (the revision was changed after the operator made it)";
  return std::nullopt;
}

} // namespace bpfchain::api
