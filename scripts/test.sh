#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, checks formatting and
# clang-tidy, then runs every test tier (unit, kernel, cluster, e2e). Run as root.
#   scripts/test.sh [ctest arguments...]     e.g. scripts/test.sh -L unit
set -euo pipefail
source "$(dirname "$0")/lib/test-steps.sh"

step "dependencies"
case " $* " in
  *" -L node "*) scripts/deps.sh --node ;;
  *) scripts/deps.sh ;;
esac

step "build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build

step "format"
scripts/check-format.sh
step "clang-tidy"
scripts/check-tidy.sh build

step "tests"
# The real-node tier (ctest -L node: kubelet, containerd; scripts/deps.sh --node) runs only
# when asked for: scripts/test.sh -L node.
if (($# == 0)); then set -- -LE node; fi
ctest --test-dir build --output-on-failure --timeout 1500 "$@"
step "done"
