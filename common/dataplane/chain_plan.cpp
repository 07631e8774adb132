#include "dataplane/chain_plan.h"

#include <algorithm>
#include <map>
#include <set>

namespace bpfchain::dataplane {
namespace {

std::map<std::string, size_t> indexById(std::span<const ProgramKey> programs) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < programs.size(); ++i)
    index.emplace(programs[i].id, i);
  return index;
}

// The common ids that come before position `until` of `programs`.
std::set<std::string> commonBefore(std::span<const ProgramKey> programs, size_t until,
                                   const std::map<std::string, size_t>& other) {
  std::set<std::string> ids;
  for (size_t i = 0; i < until; ++i)
    if (other.contains(programs[i].id))
      ids.insert(programs[i].id);
  return ids;
}

} // namespace

Result<ChainPlan> planChain(std::span<const ProgramKey> running,
                            std::span<const ProgramKey> desired) {
  std::map<std::string, size_t> desiredIndex;
  for (size_t i = 0; i < desired.size(); ++i) {
    if (desired[i].id.empty())
      return invalidError("program " + std::to_string(i) + ": empty id");
    if (!desiredIndex.emplace(desired[i].id, i).second)
      return invalidError("program " + std::to_string(i) + ": id \"" + desired[i].id +
                          "\" is also program " + std::to_string(desiredIndex[desired[i].id]));
  }
  const auto runningIndex = indexById(running);

  ChainPlan plan;
  // kept[j]: the running index of the instance kept at desired position j.
  std::vector<std::optional<size_t>> kept(desired.size());
  std::vector<bool> runningKept(running.size(), false);
  for (size_t j = 0; j < desired.size(); ++j) {
    auto it = runningIndex.find(desired[j].id);
    if (it == runningIndex.end()) {
      plan.slots.push_back({SlotSource::Load, std::nullopt});
      continue;
    }
    size_t i = it->second;
    if (running[i].digest != desired[j].digest) {
      plan.slots.push_back({SlotSource::Load, i});
      continue;
    }
    if (commonBefore(running, i, desiredIndex) == commonBefore(desired, j, runningIndex)) {
      kept[j] = i;
      runningKept[i] = true;
      plan.slots.push_back({SlotSource::Keep, i});
    } else {
      plan.slots.push_back({SlotSource::Clone, i});
    }
  }

  // Segments between consecutive kept positions (and the head and the end). A segment
  // changed when it has new instances, or when running instances sat between the same two
  // kept neighbours and now go.
  std::vector<std::optional<size_t>> separators{std::nullopt}; // the head
  for (size_t j = 0; j < desired.size(); ++j)
    if (kept[j])
      separators.emplace_back(j);
  separators.emplace_back(std::nullopt); // the end

  for (size_t s = separators.size() - 1; s-- > 0;) {
    std::optional<size_t> predecessor = separators[s];
    std::optional<size_t> successor = separators[s + 1];
    size_t begin = predecessor ? *predecessor + 1 : 0;
    size_t end = successor ? *successor : desired.size();
    size_t runningBegin = predecessor ? *kept[*predecessor] + 1 : 0;
    size_t runningEnd = successor ? *kept[*successor] : running.size();
    if (begin == end && runningBegin == runningEnd)
      continue;
    plan.relinks.push_back({predecessor, begin, end, successor});
  }

  for (size_t i = 0; i < running.size(); ++i)
    if (!runningKept[i])
      plan.retired.push_back(i);
  return plan;
}

} // namespace bpfchain::dataplane
