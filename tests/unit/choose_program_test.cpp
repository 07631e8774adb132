// Which program of a package a chain's declaration gets (program_resolver.h
// chooseFromManifest), and what the agent says when it cannot tell.
#include <gtest/gtest.h>

#include "node-agent/program_resolver.h"

namespace bpfchain::agent {
namespace {

packages::Manifest manifestOf(std::vector<packages::ManifestProgram> programs) {
  return {"pkg", "1.0.0", std::move(programs)};
}

struct Choice {
  std::optional<std::string> problem;
  dataplane::ProgramSpec spec;
  std::string object;
};

Choice choose(const packages::Manifest& m, const std::string& entry, dataplane::Hook hook) {
  ProgramDecl decl;
  decl.name = "p";
  decl.url = "http://pkg/p.tar.gz";
  decl.entry = entry;
  Choice c;
  c.spec.entry = entry;
  c.problem = chooseFromManifest(m, decl, hook, c.spec, c.object);
  return c;
}

TEST(ChooseProgram, TheOnlyProgramForTheHookIsTakenWithItsNextMap) {
  auto m = manifestOf({{"a.o", "a_xdp", "xdp", "a_next"}, {"b.o", "b_tc", "tc-ingress", "b_next"}});
  Choice c = choose(m, "", dataplane::Hook::Xdp);
  ASSERT_FALSE(c.problem) << *c.problem;
  EXPECT_EQ(c.spec.entry, "a_xdp");
  EXPECT_EQ(c.spec.nextMap, "a_next");
  EXPECT_EQ(c.object, "a.o");
  // A TC program serves either direction.
  c = choose(m, "", dataplane::Hook::TcEgress);
  ASSERT_FALSE(c.problem) << *c.problem;
  EXPECT_EQ(c.spec.entry, "b_tc");
}

TEST(ChooseProgram, TwoProgramsForTheHookNeedAnEntry) {
  auto m = manifestOf({{"a.o", "a1", "xdp", "n1"}, {"a.o", "a2", "", "n2"}});
  Choice c = choose(m, "", dataplane::Hook::Xdp);
  ASSERT_TRUE(c.problem);
  EXPECT_EQ(*c.problem, "entry: required, the package has 2 programs for hook xdp");
  c = choose(m, "a2", dataplane::Hook::Xdp); // named: no question
  ASSERT_FALSE(c.problem) << *c.problem;
  EXPECT_EQ(c.spec.nextMap, "n2");
}

TEST(ChooseProgram, AnEntryForAnotherHookIsRefusedNamingBothHooks) {
  auto m = manifestOf({{"b.o", "b_tc", "tc-ingress", "b_next"}});
  Choice c = choose(m, "b_tc", dataplane::Hook::Xdp);
  ASSERT_TRUE(c.problem);
  EXPECT_EQ(*c.problem,
            "the package's program b_tc is for hook tc-ingress, the chain's hook is xdp");
}

TEST(ChooseProgram, AnEntryThePackageLacksListsWhatItHas) {
  auto m = manifestOf({{"a.o", "a_xdp", "xdp", "a_next"}, {"c.o", "c_any", "", "c_next"}});
  Choice c = choose(m, "typo", dataplane::Hook::Xdp);
  ASSERT_TRUE(c.problem);
  EXPECT_EQ(*c.problem, "entry \"typo\": package http://pkg/p.tar.gz has no such program; its "
                        "manifest lists a_xdp (xdp, a.o), c_any (any hook, c.o)");
}

} // namespace
} // namespace bpfchain::agent
