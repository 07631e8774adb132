#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy at the root) over every C++ source in the build's compile
# database; any finding fails. Usage: scripts/check-tidy.sh [BUILD_DIR]
# A file whose key (scripts/lib/tidy_keys.py: clang-tidy's version, .clang-tidy, the compile
# command and the preprocessed source, headers included) was found clean before is not tidied
# again: the keys of clean files are kept under $BPFCHAIN_TIDY_CACHE
# (default ~/.cache/bpfchain/tidy). BPFCHAIN_TIDY_CACHE=off tidies every file.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
mapfile -t files < <(git ls-files '*.cpp')
if ((${#files[@]} == 0)); then exit 0; fi
cache=${BPFCHAIN_TIDY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpfchain/tidy}

declare -A keyOf=()
todo=("${files[@]}")
if [[ $cache != off ]]; then
  mkdir -p "$cache"
  while read -r file key; do keyOf[$file]=$key; done < <(python3 scripts/lib/tidy_keys.py "$build" "${files[@]}")
  todo=()
  for f in "${files[@]}"; do
    k=${keyOf[$f]:-}
    [[ -n $k && -e $cache/$k ]] || todo+=("$f")
  done
fi
if ((${#todo[@]} > 0)); then
  runner=$(command -v run-clang-tidy || command -v run-clang-tidy-14)
  "$runner" -quiet -p "$build" -j "$(nproc)" "${todo[@]/#/$PWD/}" >"$build/clang-tidy.log" 2>&1 || {
    sed "s/\x1b\\[[0-9;]*m//g" "$build/clang-tidy.log" | grep -E "(warning|error):" | sort -u >&2 || cat "$build/clang-tidy.log" >&2
    echo "check-tidy: findings above (full log: $build/clang-tidy.log)" >&2
    exit 1
  }
  if [[ $cache != off ]]; then
    for f in "${todo[@]}"; do
      k=${keyOf[$f]:-}
      [[ -z $k ]] || : >"$cache/$k"
    done
  fi
fi
echo "check-tidy: ${#files[@]} files clean (${#todo[@]} tidied, $((${#files[@]} - ${#todo[@]})) unchanged since a clean run)"
