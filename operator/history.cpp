#include "operator/history.h"

#include <algorithm>

namespace bpfchain::op {

std::vector<std::string> revisionsToPrune(const std::vector<RevisionRef>& listed,
                                          const std::string& uid, const std::set<int64_t>& keep) {
  std::vector<std::string> prune;
  for (const auto& r : listed)
    if (uid.empty() || r.ownerUid != uid || !keep.contains(r.generation))
      prune.push_back(r.name);
  std::sort(prune.begin(), prune.end());
  return prune;
}

std::vector<RevisionRef> revisionsToAdopt(const std::vector<RevisionRef>& listed,
                                          int64_t objectCreatedAt, const std::set<int64_t>& keep) {
  std::vector<RevisionRef> adopt;
  for (const auto& r : listed)
    if (r.ownerUid.empty() && keep.contains(r.generation) && r.createdAt > objectCreatedAt)
      adopt.push_back(r);
  return adopt;
}

} // namespace bpfchain::op
