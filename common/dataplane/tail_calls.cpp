#include "dataplane/tail_calls.h"

namespace bpfchain::dataplane {

std::optional<std::string> tailCallOverflow(std::span<const ChainShare> chains, size_t limit) {
  size_t total = 0;
  std::string shares;
  for (const ChainShare& share : chains) {
    total += share.programs;
    shares += (shares.empty() ? "" : ", ") + share.chain + ": " + std::to_string(share.programs);
  }
  if (total <= limit)
    return std::nullopt;
  return std::to_string(total) + " programs behind one root (" + shares +
         "): the kernel runs at most " + std::to_string(limit) +
         " per packet (one tail call each), the rest would be skipped";
}

} // namespace bpfchain::dataplane
