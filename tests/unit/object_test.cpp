#include <gtest/gtest.h>

#include "k8s/object.h"

using bpfchain::k8s::revisionOf;

TEST(RevisionOf, AnEtcdRevisionIsItsNumber) {
  EXPECT_EQ(revisionOf("12345"), 12345);
  EXPECT_EQ(revisionOf("0"), 0);
}

TEST(RevisionOf, AnythingElseIsNotARevision) {
  EXPECT_EQ(revisionOf(""), std::nullopt);
  EXPECT_EQ(revisionOf("12a"), std::nullopt);
  EXPECT_EQ(revisionOf("abc"), std::nullopt);
  EXPECT_EQ(revisionOf("99999999999999999999"), std::nullopt); // beyond int64
}
