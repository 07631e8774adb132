// Which ControllerRevisions a chain keeps: its own current and stable generations, nothing of
// an earlier object of the same name.
#include <gtest/gtest.h>

#include "operator/history.h"

namespace bpfchain::op {
namespace {

TEST(History, RevisionNamesAreUniquePerObject) {
  EXPECT_EQ(revisionName("edge", "3f2a9c1e-0000-4000-8000-000000000000", 7), "edge-3f2a9c1e-7");
  EXPECT_NE(revisionName("edge", "3f2a9c1e-0000", 1), revisionName("edge", "77aa0000-0000", 1));
}

TEST(History, KeepsOnlyWhatARollbackNeedsOfItsOwn) {
  std::vector<RevisionRef> listed{{"edge-aaaaaaaa-1", "aaaaaaaa-1", 1},
                                  {"edge-aaaaaaaa-2", "aaaaaaaa-1", 2},
                                  {"edge-aaaaaaaa-3", "aaaaaaaa-1", 3},
                                  {"edge-aaaaaaaa-4", "aaaaaaaa-1", 4},
                                  // A deleted object of the same name (no garbage collector took
                                  // them), and a revision of the old naming, without an owner.
                                  {"edge-bbbbbbbb-2", "bbbbbbbb-1", 2},
                                  {"edge-2", "", 2}};
  EXPECT_EQ(revisionsToPrune(listed, "aaaaaaaa-1", {4, 2}),
            (std::vector<std::string>{"edge-2", "edge-aaaaaaaa-1", "edge-aaaaaaaa-3",
                                      "edge-bbbbbbbb-2"}));
  // On deletion (no uid): all of them.
  EXPECT_EQ(revisionsToPrune(listed, "", {}).size(), listed.size());
}

TEST(History, AdoptsOnlyUnownedRevisionsMadeAfterTheObjectWas) {
  // The chain object was created at 1000. An earlier object of its name left "edge-1" (at
  // 900) and "edge-3" (at 1000, the same second: not provably ours).
  std::vector<RevisionRef> listed{{"edge-1", "", 1, 900},
                                  {"edge-3", "", 3, 1000},
                                  {"edge-4", "", 4, 1001},
                                  {"edge-5", "", 5, 1200},
                                  {"edge-aaaaaaaa-6", "aaaaaaaa-1", 6, 1300}};
  auto adopted = revisionsToAdopt(listed, 1000, {1, 3, 4, 6});
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].name, "edge-4"); // edge-5 is not needed, edge-6 already owned
}

} // namespace
} // namespace bpfchain::op
