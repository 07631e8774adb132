// Finalizer helpers (operator/finalizers.h): has, and the merge patches that add and remove
// one finalizer, keeping the others and carrying the object's resourceVersion.
#include <gtest/gtest.h>

#include "operator/finalizers.h"

using namespace bpfchain;
using k8s::Json;

namespace {

Json objectWith(const char* finalizers) {
  return Json::parse(std::string(R"({"metadata":{"name":"edge","resourceVersion":"42")") +
                     (finalizers ? std::string(R"(,"finalizers":)") + finalizers : "") + "}}");
}

} // namespace

TEST(Finalizers, HasFindsOnlyThatFinalizer) {
  EXPECT_TRUE(
      op::hasFinalizer(objectWith(R"(["a","bpfchain.io/cleanup"])"), "bpfchain.io/cleanup"));
  EXPECT_FALSE(op::hasFinalizer(objectWith(R"(["a"])"), "bpfchain.io/cleanup"));
  EXPECT_FALSE(op::hasFinalizer(objectWith(nullptr), "bpfchain.io/cleanup"));
}

TEST(Finalizers, AddKeepsTheOthersAndCarriesTheResourceVersion) {
  Json patch = op::addFinalizerPatch(objectWith(R"(["a"])"), "bpfchain.io/cleanup");
  EXPECT_EQ(patch.at("metadata").at("finalizers"), Json::parse(R"(["a","bpfchain.io/cleanup"])"));
  EXPECT_EQ(patch.at("metadata").at("resourceVersion").as_string(), "42");
  EXPECT_EQ(op::addFinalizerPatch(objectWith(nullptr), "f").at("metadata").at("finalizers"),
            Json::parse(R"(["f"])"));
}

TEST(Finalizers, RemoveTakesOnlyThatFinalizer) {
  Json patch = op::removeFinalizerPatch(objectWith(R"(["a","f","b"])"), "f");
  EXPECT_EQ(patch.at("metadata").at("finalizers"), Json::parse(R"(["a","b"])"));
  EXPECT_EQ(patch.at("metadata").at("resourceVersion").as_string(), "42");
}
