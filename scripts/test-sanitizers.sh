#!/usr/bin/env bash
# The unit and kernel tiers (and the fuzz corpora's replays) under AddressSanitizer and
# UndefinedBehaviorSanitizer (DESIGN.md section 8), in a build directory of their own,
# build-asan. Run as root (the kernel tier). Not part of scripts/test.sh: its build does not fit
# CI's cold time budget beside the default run (docs/testing.md, "Sanitizers").
#   scripts/test-sanitizers.sh [ctest arguments...]     e.g. scripts/test-sanitizers.sh -L unit
set -euo pipefail
source "$(dirname "$0")/lib/test-steps.sh"

step "dependencies"
scripts/deps.sh

step "build (address,undefined)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBPFCHAIN_SANITIZE=address,undefined >/dev/null
cmake --build build-asan --target bpfchain_sanitizer_tiers

step "tests"
# release_test checks every binary of a release build; this build has only the tiers'.
if (($# == 0)); then set -- -L 'unit|kernel' -E release_test; fi
ctest --test-dir build-asan --output-on-failure --timeout 600 "$@"
step "done"
