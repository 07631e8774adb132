#!/usr/bin/env bash
# Rebuilds the example packages under examples/packages/ from this build's BPF objects
# (build/bpf/*.bpf.o) and updates every sha256 in examples/ that named an old package file.
#
#   scripts/build-example-packages.sh          BUILD_DIR=build-x scripts/build-example-packages.sh
#
# The packages are committed, so that the examples apply as they are, with a sha256 that
# matches: run this after changing a program in bpf/, then commit examples/ as a whole
# (tests/cluster/examples_test.cpp fails when an example's sha256 is stale). Archives are
# deterministic (bpfchain-pkg build; tar --sort=name --mtime=@0 and gzip -n for the L3AF
# artifact), so the same objects always give the same sha256. Objects themselves depend on
# clang and on the kernel BTF the build dumped vmlinux.h from, so a rebuild on another machine
# may change them: that is what the sha256 rewrite below is for.
#
# What it writes (<name>-<version>.tar.gz):
#   counter, portfilter, ratelimit, blocklist   bpfchain packages: manifest.yaml with the XDP
#       entry (<name>_xdp, hook xdp, next map <name>_xdp_next) and the TC entry (<name>_tc, hook
#       tc-ingress, next map <name>_tc_next), the object and its map documentation header
#   l3af_compat                                 an L3AF-style artifact: no manifest, one top-level
#       directory holding l3af_compat.bpf.o (a BpfChain names entry xdp_l3af and nextMap
#       xdp_l3af_next_prog itself)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
out=examples/packages
version=1.0.0
functions=(counter portfilter ratelimit blocklist)

if [[ ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja >/dev/null
fi
targets=(bpfchain-pkg bpf_l3af_compat_gen)
for f in "${functions[@]}"; do targets+=("bpf_${f}_gen"); done
cmake --build "$build" --target "${targets[@]}" >/dev/null
pkg=$build/bin/bpfchain-pkg

mkdir -p "$out"
declare -A old_sha=()
for f in "$out"/*.tar.gz; do
  [[ -e $f ]] && old_sha[$(basename "$f")]=$("$pkg" digest "$f")
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for f in "${functions[@]}"; do
  obj=$build/bpf/$f.bpf.o
  "$pkg" build --name "$f" --version "$version" \
    --program "$obj:${f}_xdp:xdp:${f}_xdp_next" \
    --program "$obj:${f}_tc:tc-ingress:${f}_tc_next" \
    --file "bpf/include/bpfchain/$f.h" \
    -o "$work/$f-$version.tar.gz" >/dev/null
done

# The L3AF artifact: what L3AF's build publishes, a tarball with the object in a directory.
mkdir -p "$work/l3af/l3af_compat"
cp "$build/bpf/l3af_compat.bpf.o" "$work/l3af/l3af_compat/"
chmod 0755 "$work/l3af/l3af_compat"
chmod 0644 "$work/l3af/l3af_compat/l3af_compat.bpf.o"
tar -C "$work/l3af" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  --format=ustar -cf - l3af_compat | gzip -n -9 >"$work/l3af_compat-$version.tar.gz"

for new in "$work"/*.tar.gz; do
  name=$(basename "$new")
  sha=$("$pkg" digest "$new")
  old=${old_sha[$name]:-}
  if [[ $old == "$sha" ]]; then
    echo "unchanged $out/$name $sha"
    continue
  fi
  cp "$new" "$out/$name"
  echo "wrote     $out/$name $sha"
  if [[ -n $old ]]; then
    # Every example that named the old file now names the new one.
    grep -rlF --include='*.yaml' "$old" examples | while read -r y; do
      sed -i "s/$old/$sha/g" "$y"
      echo "  updated $y"
    done
  fi
done
