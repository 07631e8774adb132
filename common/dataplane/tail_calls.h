// The kernel's tail-call limit, as it bounds one chain instance.
//
// A packet may take at most MAX_TAIL_CALL_CNT (33 since Linux 5.17) tail calls; the next one
// fails and the caller falls through to its default return. Every (interface, hook) runs all its
// chains' programs behind one root, and the root's call to the first program is a tail call
// too, so an instance runs at most 33 programs: a 34th would be silently skipped (a filter
// there would let traffic through). tests/kernel/chain_test checks the number on this kernel.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

namespace bpfchain::dataplane {

inline constexpr size_t kMaxChainPrograms = 33;

// One chain's share of an instance: its name and how many of its programs run (enabled ones).
struct ChainShare {
  std::string chain;
  size_t programs = 0;
};

// Nothing when an instance running `chains` (in order) fits the limit; else why not, naming
// every chain's share:
//   "35 programs behind one root (a: 3, b: 32): the kernel runs at most 33 per packet (one
//    tail call each), the rest would be skipped"
std::optional<std::string> tailCallOverflow(std::span<const ChainShare> chains,
                                            size_t limit = kMaxChainPrograms);

} // namespace bpfchain::dataplane
