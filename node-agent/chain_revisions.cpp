#include "node-agent/chain_revisions.h"

#include <set>

#include "api/chain_ref.h"
#include "api/published_rollout.h"

namespace bpfchain::agent {

namespace {

// The fields of a BpfChain's spec that a node runs; nodeSelector and rollout are the
// operator's.
constexpr const char* kNodeFields[] = {"hook",       "priority", "placement",
                                       "interfaces", "pods",     "programs"};

// The inline chains[] entry of revision `spec` at the reference's name and generation.
k8s::Json inlineChain(const std::string& name, int64_t generation, const k8s::Json& spec) {
  k8s::Json entry = k8s::Json::object();
  entry["name"] = k8s::Json::string(name);
  entry["generation"] = k8s::Json::number(generation);
  for (const char* field : kNodeFields)
    if (spec.has_field(field) && !spec.at(field).is_null())
      entry[field] = spec.at(field);
  return entry;
}

Result<NodeSpec> parseJsonSpec(const k8s::Json& spec, const std::string& source) {
  YAML::Node document;
  try {
    document = YAML::Load(spec.serialize());
  } catch (const YAML::Exception& e) {
    return invalidError(source + ": " + e.what());
  }
  return parseNodeSpec(document, source);
}

// The declaration of a revision kept from an earlier resolution, or nullopt when it is not
// one of `chain` or does not parse (then nothing of it is run).
std::optional<ChainDecl> lastGood(const std::string& chain, const k8s::Json& object,
                                  const std::string& source) {
  auto revision = api::chainRevisionFromJson(object);
  if (!revision || revision->chain != chain)
    return std::nullopt;
  k8s::Json spec = k8s::Json::object();
  spec["chains"][0] = inlineChain(chain, revision->generation, revision->spec);
  auto parsed = parseJsonSpec(spec, source + " (revision " + revision->name + ")");
  if (!parsed || parsed->chains.size() != 1)
    return std::nullopt;
  ChainDecl decl = std::move(parsed->chains.front());
  decl.revision = revision->name;
  return decl;
}

} // namespace

Result<ResolvedSpec> resolveNodeSpec(const k8s::Json& spec, const std::string& source,
                                     const RevisionLookup& lookup, const LastResolved& lastResolved,
                                     const std::string& node, const PublishedLookup& published) {
  ResolvedSpec out;
  if (!spec.is_object() || !spec.has_field("chains") || !spec.at("chains").is_array()) {
    auto parsed = parseJsonSpec(spec, source); // no references; parseNodeSpec says what is wrong
    if (!parsed)
      return std::move(parsed).error();
    out.spec = std::move(*parsed);
    return out;
  }
  const auto& entries = spec.at("chains").as_array();
  // A name used twice fails the whole spec, as parseNodeSpec does: which entry would run?
  std::set<std::string> names;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries.at(i);
    if (e.is_object() && e.has_field("name") && e.at("name").is_string() &&
        !names.insert(e.at("name").as_string()).second)
      return invalidError(source + ": chains[" + std::to_string(i) + "].name: \"" +
                          e.at("name").as_string() + "\" is used twice");
  }
  k8s::Json inlined = spec;
  k8s::Json chains = k8s::Json::array();
  size_t kept = 0;
  std::map<std::string, std::string> revisionOf; // resolved references: chain -> revision
  std::vector<InvalidChain> unresolved;
  std::vector<ChainDecl> fallbacks;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& entry = entries.at(i);
    std::string field = "chains[" + std::to_string(i) + "]";
    auto keepRunning = [&](const std::string& chain) {
      if (auto kept = lastResolved(chain))
        if (auto decl = lastGood(chain, *kept, source))
          fallbacks.push_back(std::move(*decl));
    };
    std::optional<api::ChainRef> followed;
    if (api::isMembership(entry)) {
      std::string chain = k8s::stringAt(entry, {"name"});
      Result<std::optional<api::PublishedRollout>> rollout =
          published ? published(chain)
                    : Result<std::optional<api::PublishedRollout>>(
                          Error(ErrorKind::RevisionUnavailable, 0,
                                "BpfChain " + chain + ": chains are not watched here"));
      if (rollout && !*rollout) { // nothing published yet: keep what runs, else not yet here
        keepRunning(chain);
        continue;
      }
      Result<std::optional<api::ChainRef>> ref =
          rollout ? api::entryRef(entry, node, &**rollout, field)
                  : Result<std::optional<api::ChainRef>>(rollout.error());
      if (!ref) {
        InvalidChain bad;
        bad.name = chain.empty() ? field : chain;
        bad.kind = ref.error().kind() == ErrorKind::RevisionUnavailable
                       ? ErrorKind::RevisionUnavailable
                       : ErrorKind::SpecInvalid;
        bad.message = ref.error().context(source).message();
        unresolved.push_back(std::move(bad));
        keepRunning(chain);
        continue;
      }
      if (!*ref)
        continue; // the rollout gives this node nothing (yet)
      followed = std::move(**ref);
    } else if (!api::isReference(entry)) {
      chains[kept++] = entry;
      continue;
    }
    // A CRD whose one schema for chains[] entries defaults `placement` (the inline form's)
    // puts it into references too: the revision's data says where the chain goes.
    k8s::Json refEntry = entry;
    if (refEntry.is_object() && refEntry.has_field("placement"))
      refEntry.erase("placement");
    auto ref = followed ? Result<api::ChainRef>(*followed) : api::chainRefFromJson(refEntry, field);
    if (!ref) {
      // A reference this agent cannot read (a newer operator's?): it fails alone.
      std::string name = entry.has_field("name") && entry.at("name").is_string()
                             ? entry.at("name").as_string()
                             : field;
      InvalidChain bad;
      bad.name = name;
      bad.message = ref.error().context(source).message();
      if (entry.has_field("generation") && entry.at("generation").is_integer())
        bad.generation = entry.at("generation").as_number().to_int64();
      if (entry.at("revision").is_string())
        bad.revision = entry.at("revision").as_string();
      unresolved.push_back(std::move(bad));
      continue;
    }
    std::optional<Error> failure;
    std::optional<api::ChainRevision> chosen;
    k8s::Json chosenObject;
    if (auto copies = lookup(*ref); !copies) {
      failure = copies.error();
    } else {
      for (const auto& copy : *copies) {
        auto revision = api::chainRevisionFromJson(copy);
        std::optional<std::string> why =
            revision ? api::mismatch(*ref, *revision) : revision.error().message();
        if (!why) {
          chosen = std::move(*revision);
          chosenObject = copy;
          break;
        }
        if (!failure) // the first copy's problem names the API server's copy
          failure = Error(ErrorKind::DigestMismatch, 0, *why);
      }
      if (!chosen && !failure)
        failure = Error(ErrorKind::RevisionUnavailable, 0, "no copy of " + ref->revision);
    }
    if (chosen) {
      chains[kept++] = inlineChain(ref->name, ref->generation, chosen->spec);
      revisionOf[ref->name] = ref->revision;
      out.revisions[ref->name] = std::move(chosenObject);
      continue;
    }
    InvalidChain bad;
    bad.name = ref->name;
    bad.generation = ref->generation;
    bad.kind = failure->kind() == ErrorKind::DigestMismatch ? ErrorKind::DigestMismatch
                                                            : ErrorKind::RevisionUnavailable;
    bad.message = failure->message();
    bad.revision = ref->revision;
    unresolved.push_back(std::move(bad));
    if (auto kept = lastResolved(ref->name))
      if (auto decl = lastGood(ref->name, *kept, source); decl && decl->revision != ref->revision)
        fallbacks.push_back(std::move(*decl));
  }
  inlined["chains"] = chains;
  auto parsed = parseJsonSpec(inlined, source);
  if (!parsed)
    return std::move(parsed).error();
  out.spec = std::move(*parsed);
  for (auto& c : out.spec.chains)
    if (auto r = revisionOf.find(c.name); r != revisionOf.end())
      c.revision = r->second;
  for (auto& bad : out.spec.invalid)
    if (auto r = revisionOf.find(bad.name); r != revisionOf.end()) {
      bad.revision = r->second; // the revision's data does not parse here
      out.revisions.erase(bad.name);
    }
  for (auto& bad : unresolved)
    out.spec.invalid.push_back(std::move(bad));
  for (auto& decl : fallbacks)
    out.spec.chains.push_back(std::move(decl));
  return out;
}

} // namespace bpfchain::agent
