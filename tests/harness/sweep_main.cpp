// bpfchain-test-sweep [--fail-on-leftovers]
// Runs before the test suite (clears what killed runs left) and after it, with
// --fail-on-leftovers, to fail the run when any test leaked a resource.
#include <cstring>
#include <iostream>

#include "harness/sweep.h"

int main(int argc, char** argv) {
  bool failOnLeftovers = argc > 1 && std::strcmp(argv[1], "--fail-on-leftovers") == 0;
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
