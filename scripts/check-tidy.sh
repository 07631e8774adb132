#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy at the root) over every C++ source in the build's compile
# database; any finding fails. Usage: scripts/check-tidy.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
mapfile -t files < <(git ls-files '*.cpp')
if ((${#files[@]} == 0)); then exit 0; fi
runner=$(command -v run-clang-tidy || command -v run-clang-tidy-14)
"$runner" -quiet -p "$build" -j "$(nproc)" "${files[@]/#/$PWD/}" >"$build/clang-tidy.log" 2>&1 || {
  sed "s/\x1b\\[[0-9;]*m//g" "$build/clang-tidy.log" | grep -E "(warning|error):" | sort -u >&2 || cat "$build/clang-tidy.log" >&2
  echo "check-tidy: findings above (full log: $build/clang-tidy.log)" >&2
  exit 1
}
echo "check-tidy: ${#files[@]} files clean"
