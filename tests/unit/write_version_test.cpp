#include <gtest/gtest.h>

#include "k8s/write_version.h"

using bpfchain::k8s::WriteVersion;

TEST(WriteVersion, BeforeAnyWriteTheWatchedVersionIsSent) {
  WriteVersion v;
  EXPECT_EQ(v.toSend("7"), "7");
  EXPECT_EQ(v.toSend(""), "");
}

TEST(WriteVersion, WhileTheWatchLagsOurWriteTheVersionItMadeIsSent) {
  WriteVersion v;
  v.written("7", "9");
  EXPECT_EQ(v.toSend("7"), "9");
  v.written("7", "12"); // a second write before the watch brought the first
  EXPECT_EQ(v.toSend("7"), "12");
}

TEST(WriteVersion, OnceTheWatchMovesOnItsVersionIsSent) {
  WriteVersion v;
  v.written("7", "9");
  EXPECT_EQ(v.toSend("9"), "9");   // our write came back
  EXPECT_EQ(v.toSend("15"), "15"); // someone wrote after it: theirs, never ours
  EXPECT_EQ(v.toSend("8"), "8");   // someone wrote before it: a conflict will tell
}
