#include "node-agent/chain_revisions.h"

#include <set>

#include "api/chain_ref.h"
#include "api/node_config_types.h"
#include "api/published_rollout.h"

namespace bpfchain::agent {

namespace {

// The inline chains[] entry of revision `spec` at the reference's name and generation.
k8s::Json inlineChain(const std::string& name, int64_t generation, const k8s::Json& spec) {
  k8s::Json entry = k8s::Json::object();
  entry["name"] = k8s::Json::string(name);
  entry["generation"] = k8s::Json::number(generation);
  // The fields of a BpfChain's spec that a node runs; nodeSelector and rollout are the
  // operator's.
  static const std::vector<std::string> kNodeFields = api::nodeFacingChainFields();
  for (const auto& field : kNodeFields)
    if (spec.has_field(field) && !spec.at(field).is_null())
      entry[field] = spec.at(field);
  return entry;
}

// The declaration of a revision kept from an earlier resolution, or nullopt when it is not
// one of `chain` or does not parse (then nothing of it is run).
std::optional<ChainDecl> lastGood(const std::string& chain, const k8s::Json& object) {
  auto revision = api::chainRevisionFromJson(object);
  if (!revision || revision->chain != chain)
    return std::nullopt;
  auto parsed =
      api::parseChain(inlineChain(chain, revision->generation, revision->spec), "chains[0]");
  if (!parsed)
    return std::nullopt;
  parsed->revision = revision->name;
  return std::move(*parsed);
}

// One pass of resolveNodeSpec over spec.chains[]: references and membership entries become
// inline chains (or invalid ones), in the order of the entries.
class Resolver {
public:
  Resolver(const std::string& source, const RevisionLookup& lookup,
           const LastResolved& lastResolved, const std::string& node,
           const PublishedLookup& published)
      : source_(source), lookup_(lookup), lastResolved_(lastResolved), node_(node),
        published_(published) {}

  void entry(const k8s::Json& entry, const std::string& field);
  Result<ResolvedSpec> finish(const k8s::Json& spec);

private:
  // Keeps the chain's last resolved revision running (unless it is `except`).
  void keepRunning(const std::string& chain, const std::string& except = "");
  // The revision a membership entry gives this node, or nullopt when it is handled here (not on
  // the node yet, or failed).
  std::optional<api::ChainRef> followed(const k8s::Json& entry, const std::string& chain,
                                        const std::string& field);
  // Runs the revision `ref` names, or fails the chain alone.
  void reference(const api::ChainRef& ref);
  // A reference this agent cannot read (a newer operator's?): it fails alone.
  void unreadable(const api::NodeChainEntry& entry, const std::string& field, const Error& why);
  // The copy of the revision `ref` names, or why none is.
  Result<std::pair<api::ChainRevision, k8s::Json>> revisionOf(const api::ChainRef& ref);

  const std::string& source_;
  const RevisionLookup& lookup_;
  const LastResolved& lastResolved_;
  const std::string& node_;
  const PublishedLookup& published_;
  ResolvedSpec out_;
  k8s::Json chains_ = k8s::Json::array();
  size_t kept_ = 0;
  std::map<std::string, std::string> revisionOf_; // resolved references: chain -> revision
  std::vector<InvalidChain> unresolved_;
  std::vector<ChainDecl> fallbacks_;
};

void Resolver::keepRunning(const std::string& chain, const std::string& except) {
  if (auto kept = lastResolved_(chain))
    if (auto decl = lastGood(chain, *kept); decl && (except.empty() || decl->revision != except))
      fallbacks_.push_back(std::move(*decl));
}

std::optional<api::ChainRef> Resolver::followed(const k8s::Json& entry, const std::string& chain,
                                                const std::string& field) {
  Result<std::optional<api::PublishedRollout>> rollout =
      published_ ? published_(chain)
                 : Result<std::optional<api::PublishedRollout>>(
                       Error(ErrorKind::RevisionUnavailable, 0,
                             "BpfChain " + chain + ": chains are not watched here"));
  if (rollout && !*rollout) { // nothing published yet: keep what runs, else not yet here
    keepRunning(chain);
    return std::nullopt;
  }
  Result<std::optional<api::ChainRef>> ref =
      rollout ? api::entryRef(entry, node_, &**rollout, field)
              : Result<std::optional<api::ChainRef>>(rollout.error());
  if (!ref) {
    InvalidChain bad;
    bad.name = chain.empty() ? field : chain;
    bad.kind = ref.error().kind() == ErrorKind::RevisionUnavailable ? ErrorKind::RevisionUnavailable
                                                                    : ErrorKind::SpecInvalid;
    bad.message = ref.error().context(source_).message();
    unresolved_.push_back(std::move(bad));
    keepRunning(chain);
    return std::nullopt;
  }
  return std::move(*ref); // nullopt: the rollout gives this node nothing (yet)
}

void Resolver::entry(const k8s::Json& entry, const std::string& field) {
  auto typed = api::nodeChainEntryFromJson(entry, field);
  api::ChainEntryKind kind = typed ? typed->kind : api::chainEntryKind(entry);
  switch (kind) {
  case api::ChainEntryKind::Membership:
    // Its one error is an empty name, which entryRef names once the rollout is read.
    if (auto ref = followed(entry, typed ? typed->name : std::string(), field))
      reference(*ref);
    return;
  case api::ChainEntryKind::Reference:
    if (!typed)
      unreadable(api::chainEntryOf(entry), field, typed.error());
    else
      reference(*typed->ref);
    return;
  case api::ChainEntryKind::Inline:
    chains_[kept_++] = entry;
    return;
  }
}

Result<std::pair<api::ChainRevision, k8s::Json>> Resolver::revisionOf(const api::ChainRef& ref) {
  auto copies = lookup_(ref);
  if (!copies)
    return std::move(copies).error();
  std::optional<Error> failure;
  for (const auto& copy : *copies) {
    auto revision = api::chainRevisionFromJson(copy);
    std::optional<std::string> why =
        revision ? api::mismatch(ref, *revision) : revision.error().message();
    if (!why)
      return std::pair{std::move(*revision), copy};
    if (!failure) // the first copy's problem names the API server's copy
      failure = Error(ErrorKind::DigestMismatch, 0, *why);
  }
  if (!failure)
    failure = Error(ErrorKind::RevisionUnavailable, 0, "no copy of " + ref.revision);
  return *failure;
}

void Resolver::unreadable(const api::NodeChainEntry& entry, const std::string& field,
                          const Error& why) {
  InvalidChain bad;
  bad.name = entry.name.empty() ? field : entry.name;
  bad.message = why.context(source_).message();
  bad.generation = entry.generation.value_or(0);
  bad.revision = entry.revision;
  unresolved_.push_back(std::move(bad));
}

void Resolver::reference(const api::ChainRef& ref) {
  auto chosen = revisionOf(ref);
  if (chosen) {
    chains_[kept_++] = inlineChain(ref.name, ref.generation, chosen->first.spec);
    revisionOf_[ref.name] = ref.revision;
    out_.revisions[ref.name] = std::move(chosen->second);
    return;
  }
  InvalidChain bad;
  bad.name = ref.name;
  bad.generation = ref.generation;
  bad.kind = chosen.error().kind() == ErrorKind::DigestMismatch ? ErrorKind::DigestMismatch
                                                                : ErrorKind::RevisionUnavailable;
  bad.message = chosen.error().message();
  bad.revision = ref.revision;
  unresolved_.push_back(std::move(bad));
  keepRunning(ref.name, ref.revision);
}

Result<ResolvedSpec> Resolver::finish(const k8s::Json& spec) {
  k8s::Json inlined = spec;
  inlined["chains"] = chains_;
  auto parsed = parseNodeSpec(inlined, source_);
  if (!parsed)
    return std::move(parsed).error();
  out_.spec = std::move(*parsed);
  for (auto& c : out_.spec.chains)
    if (auto r = revisionOf_.find(c.name); r != revisionOf_.end())
      c.revision = r->second;
  for (auto& bad : out_.spec.invalid)
    if (auto r = revisionOf_.find(bad.name); r != revisionOf_.end()) {
      bad.revision = r->second; // the revision's data does not parse here
      out_.revisions.erase(bad.name);
    }
  for (auto& bad : unresolved_)
    out_.spec.invalid.push_back(std::move(bad));
  for (auto& decl : fallbacks_)
    out_.spec.chains.push_back(std::move(decl));
  return std::move(out_);
}

} // namespace

Result<ResolvedSpec> resolveNodeSpec(const k8s::Json& spec, const std::string& source,
                                     const RevisionLookup& lookup, const LastResolved& lastResolved,
                                     const std::string& node, const PublishedLookup& published) {
  if (!spec.is_object() || !spec.has_field("chains") || !spec.at("chains").is_array()) {
    auto parsed = parseNodeSpec(spec, source); // no references; parseNodeSpec says what is wrong
    if (!parsed)
      return std::move(parsed).error();
    ResolvedSpec out;
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
  Resolver resolver(source, lookup, lastResolved, node, published);
  for (size_t i = 0; i < entries.size(); ++i)
    resolver.entry(entries.at(i), "chains[" + std::to_string(i) + "]");
  return resolver.finish(spec);
}

} // namespace bpfchain::agent
