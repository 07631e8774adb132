#!/usr/bin/env bash
# The image as scripts/image.sh builds it (root: umoci, chroot): an OCI archive tagged with the
# project version, whose root file system runs every binary (each answers --version with that
# version from inside the image's own libraries), holds no shell, and is at most 60 MB
# uncompressed (DESIGN.md section 9).
#   tests/e2e/image_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
fail() { echo "image_test: FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d /tmp/bpfchain-image-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

version=$("$src/scripts/image.sh" --version)
"$src/scripts/image.sh" --no-build --build-dir "$build" --output "$tmp/image.tar" >"$tmp/out" 2>"$tmp/log" ||
  { cat "$tmp/log" >&2; fail "scripts/image.sh failed"; }
cat "$tmp/log"
mkdir "$tmp/layout"
tar -C "$tmp/layout" -xf "$tmp/image.tar"
tags=$(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"]' "$tmp/layout/index.json")
[[ $tags == "$version" ]] || fail "archive tags: $tags, want $version"
umoci unpack --image "$tmp/layout:$version" "$tmp/bundle" >/dev/null
rootfs=$tmp/bundle/rootfs
for b in bpfchain-operator bpfchain-agent bpfchain-cni bpfchain-pkg kubectl-bpfchain; do
  out=$(chroot "$rootfs" "/usr/bin/$b" --version) || fail "$b --version in the image: exit $?"
  [[ $out == "$b $version" ]] || fail "$b --version in the image: '$out'"
done
[[ ! -e $rootfs/bin/sh && ! -e $rootfs/usr/bin/sh ]] || fail "the image has a shell"
bytes=$(du -sb --apparent-size "$rootfs" | cut -f1)
echo "image_test: $version, $((bytes / 1000000)) MB uncompressed"
((bytes <= 60000000)) || fail "the image is $bytes bytes uncompressed, over 60 MB"
echo "image_test: ok"
