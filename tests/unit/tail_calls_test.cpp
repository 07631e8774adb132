// tailCallOverflow: how many programs one instance (one root) may run.
#include <gtest/gtest.h>
#include <vector>

#include "dataplane/tail_calls.h"

namespace bpfchain::dataplane {
namespace {

TEST(TailCallOverflow, ThirtyThreeProgramsFit) {
  EXPECT_EQ(kMaxChainPrograms, 33u);
  std::vector<ChainShare> chains{{"a", 3}, {"b", 30}};
  EXPECT_EQ(tailCallOverflow(chains), std::nullopt);
  EXPECT_EQ(tailCallOverflow(std::vector<ChainShare>{}), std::nullopt);
  EXPECT_EQ(tailCallOverflow(std::vector<ChainShare>{{"one", 33}}), std::nullopt);
}

TEST(TailCallOverflow, OneMoreIsRefusedNamingEveryShare) {
  std::vector<ChainShare> chains{{"a", 3}, {"b", 32}};
  EXPECT_EQ(tailCallOverflow(chains),
            "35 programs behind one root (a: 3, b: 32): the kernel runs at most 33 per packet "
            "(one tail call each), the rest would be skipped");
  EXPECT_EQ(tailCallOverflow(std::vector<ChainShare>{{"big", 34}}),
            "34 programs behind one root (big: 34): the kernel runs at most 33 per packet (one "
            "tail call each), the rest would be skipped");
  EXPECT_NE(tailCallOverflow(std::vector<ChainShare>{{"a", 2}, {"b", 1}}, 2), std::nullopt);
}

} // namespace
} // namespace bpfchain::dataplane
