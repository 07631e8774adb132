#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, checks formatting and
# clang-tidy, then runs every test tier (unit, kernel, cluster, e2e). Run as root.
#   scripts/test.sh [ctest arguments...]     e.g. scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin
# CI builds in a new clone each time: let ccache hit across checkout directories.
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true

start=$SECONDS
step() { echo "== $* ($((SECONDS - start)) s)"; }

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
