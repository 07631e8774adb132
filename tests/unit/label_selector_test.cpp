#include <gtest/gtest.h>

#include "k8s/label_selector.h"

namespace bpfchain::k8s {
namespace {

LabelSelector parse(const std::string& json) {
  auto s = LabelSelector::parse(Json::parse(json), "spec.nodeSelector");
  EXPECT_TRUE(s.ok()) << s.error().message();
  return s.ok() ? *s : LabelSelector();
}

TEST(LabelSelector, EmptyOrAbsentSelectsEverything) {
  EXPECT_TRUE(parse("{}").matches({}));
  auto absent = LabelSelector::parse(Json::null(), "x");
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->matches({{"role", "edge"}}));
}

TEST(LabelSelector, MatchLabelsAndExpressionsMustAllHold) {
  auto s = parse(R"({"matchLabels":{"role":"edge"},
                     "matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]},
                                         {"key":"tier","operator":"NotIn","values":["db"]},
                                         {"key":"gpu","operator":"DoesNotExist"},
                                         {"key":"kernel","operator":"Exists"}]})");
  EXPECT_TRUE(s.matches({{"role", "edge"}, {"zone", "a"}, {"kernel", "6.18"}}));
  EXPECT_FALSE(s.matches({{"role", "core"}, {"zone", "a"}, {"kernel", "6.18"}}));
  EXPECT_FALSE(s.matches({{"role", "edge"}, {"zone", "c"}, {"kernel", "6.18"}}));
  EXPECT_FALSE(s.matches({{"role", "edge"}, {"zone", "a"}, {"tier", "db"}, {"kernel", "6.18"}}));
  EXPECT_FALSE(s.matches({{"role", "edge"}, {"zone", "a"}, {"gpu", "1"}, {"kernel", "6.18"}}));
  EXPECT_FALSE(s.matches({{"role", "edge"}, {"zone", "a"}}));
}

TEST(LabelSelector, ErrorsNameTheField) {
  auto bad = LabelSelector::parse(
      Json::parse(R"({"matchExpressions":[{"key":"a","operator":"Near","values":["x"]}]})"),
      "spec.nodeSelector");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "spec.nodeSelector.matchExpressions[0].operator: \"Near\" is "
                                   "not one of In, NotIn, Exists, DoesNotExist");
  auto noValues = LabelSelector::parse(
      Json::parse(R"({"matchExpressions":[{"key":"a","operator":"In"}]})"), "spec.nodeSelector");
  ASSERT_FALSE(noValues.ok());
  EXPECT_EQ(noValues.error().message(),
            "spec.nodeSelector.matchExpressions[0].values: In needs values");
}

} // namespace
} // namespace bpfchain::k8s
