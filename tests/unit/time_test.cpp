#include <chrono>
#include <gtest/gtest.h>

#include "system/time.h"

namespace bpfchain {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::system_clock::time_point;

TEST(Rfc3339, WholeSecondsMillisecondsAndMicroseconds) {
  TimePoint t(1234567890123456us);
  EXPECT_EQ(rfc3339(t), "2009-02-13T23:31:30Z");
  EXPECT_EQ(rfc3339(t, 3), "2009-02-13T23:31:30.123Z");
  EXPECT_EQ(rfc3339(t, 6), "2009-02-13T23:31:30.123456Z");
  EXPECT_EQ(rfc3339(TimePoint(5us), 6), "1970-01-01T00:00:00.000005Z");
  EXPECT_EQ(rfc3339(TimePoint(999us), 3), "1970-01-01T00:00:00.000Z");
}

TEST(Rfc3339, BeforeTheEpochTheFractionIsNeverNegative) {
  EXPECT_EQ(rfc3339(TimePoint(-1us), 6), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(rfc3339(TimePoint(-1us)), "1969-12-31T23:59:59Z");
}

TEST(Rfc3339, ParsesWhatItWrites) {
  TimePoint t(1234567890s);
  EXPECT_EQ(parseRfc3339(rfc3339(t)), t);
  EXPECT_EQ(parseRfc3339("2009-02-13T23:31:30.123456Z"), t);
  EXPECT_EQ(parseRfc3339(""), std::nullopt);
  EXPECT_EQ(parseRfc3339("yesterday"), std::nullopt);
}

} // namespace
} // namespace bpfchain
