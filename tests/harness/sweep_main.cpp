// bpfchain-test-sweep [--fail-on-leftovers]
// Runs before the test suite (clears what killed runs left) and after it, with
// --fail-on-leftovers, to fail the run when any test leaked a resource.
#include <iostream>

#include "harness/sweep.h"
#include "system/command_line.h"

int main(int argc, char** argv) {
  bool failOnLeftovers = false;
  bpfchain::cli::CommandLine cl("bpfchain-test-sweep",
                                "Removes what test runs that died left behind.");
  cl.app().add_flag("--fail-on-leftovers", failOnLeftovers,
                    "exit 1 when anything was left (after the suite)");
  if (auto exit = cl.parse(argc, argv))
    return *exit;
  auto report = bpfchain::testing::sweepStaleResources();
  for (const auto& item : report.removed)
    std::cout << (failOnLeftovers ? "left behind, removed: " : "removed stale ") << item << "\n";
  for (const auto& error : report.errors)
    std::cerr << "error: " << error << "\n";
  if (!report.errors.empty() || (failOnLeftovers && !report.removed.empty()))
    return 1;
  std::cout << "no leftovers\n";
  return 0;
}
