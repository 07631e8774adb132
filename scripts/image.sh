#!/usr/bin/env bash
# Builds the bpfchain image (the Containerfile's image) from this machine's Debian packages,
# with no container engine and no registry, into an OCI archive; optionally imports it into a
# containerd. Run as root (umoci keeps file owners only as root).
#
#   scripts/image.sh                      build build/bpfchain-image.tar
#   scripts/image.sh --import SOCKET      ... and import it into the containerd at SOCKET
#                                          (ctr -n k8s.io images import), as NAME:VERSION
#   scripts/image.sh --version            print the version (CMakeLists.txt's project VERSION),
#                                          which is the image tag
# Options: --build-dir DIR (build), --output FILE (BUILD_DIR/bpfchain-image.tar),
#          --name NAME (ghcr.io/bpfchain/bpfchain, the chart's image.repository),
#          --tag TAG (the version; another tag gives a rebuilt image of the same binaries, as
#          the node test's `helm upgrade --set image.tag=TAG` uses),
#          --no-build (pack the binaries the build directory has, as they are: a test running
#          beside others must not relink the binaries they are starting).
#
# How: builds the four binaries (cmake target bpfchain-install-set), installs them with
# `cmake --install --strip` into a scratch directory, makes the root file system with
# image/make-rootfs.sh from the packages in image/runtime-packages.txt (the same script and
# list as the Containerfile, so the two images hold the same files), and packs it with umoci
# (Debian's umoci) into one layer. The image's file system is what the binaries load and
# nothing else: no shell, no package manager; see docs/releasing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH=$PATH:/usr/sbin:/sbin

version=$(sed -n 's/^project(bpfchain VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
[[ -n $version ]] || { echo "image.sh: no project VERSION in CMakeLists.txt" >&2; exit 1; }

build=build
output=
name=ghcr.io/bpfchain/bpfchain
import=
tag=$version
no_build=
while (($#)); do
  case $1 in
    --version) echo "$version"; exit 0 ;;
    --build-dir) build=$2; shift ;;
    --output) output=$2; shift ;;
    --name) name=$2; shift ;;
    --tag) tag=$2; shift ;;
    --no-build) no_build=1 ;;
    --import) import=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
output=${output:-$build/bpfchain-image.tar}
[[ $(id -u) -eq 0 ]] || { echo "image.sh: run as root (umoci keeps file owners only as root)" >&2; exit 1; }
command -v umoci >/dev/null || { echo "image.sh: umoci is missing (apt-get install umoci; scripts/deps.sh installs it)" >&2; exit 1; }

work=$(mktemp -d /tmp/bpfchain-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [[ -n $no_build ]]; then
  for b in bpfchain-agent bpfchain-operator bpfchain-cni bpfchain-pkg; do
    [[ -x $build/bin/$b ]] || { echo "image.sh: --no-build: $build/bin/$b is missing" >&2; exit 1; }
  done
else
  echo "image.sh: building the binaries in $build/" >&2
  [[ -f $build/build.ninja ]] || cmake -S . -B "$build" -G Ninja >/dev/null
  cmake --build "$build" --target bpfchain-install-set >&2
fi
DESTDIR=$work/install cmake --install "$build" --prefix /usr --strip >/dev/null

layout=$work/oci
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
image/make-rootfs.sh "$work/install/usr/bin" "$work/bundle/rootfs" >&2
umoci repack --image "$layout:$tag" "$work/bundle"
umoci config --image "$layout:$tag" --os linux --architecture amd64 --author bpfchain \
  --config.env PATH=/usr/bin --config.user 0:0 --config.cmd bpfchain-agent --config.cmd --help \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.source=https://github.com/bpfchain/bpfchain" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0 AND (GPL-2.0-only OR BSD-2-Clause)"
umoci gc --layout "$layout"
mkdir -p "$(dirname "$output")"
tar -C "$layout" -cf "$output.tmp" . && mv "$output.tmp" "$output"

size_mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }
uncompressed=$(du -sb --apparent-size "$work/bundle/rootfs" | cut -f1)
echo "image.sh: $output: $name:$tag, one layer of $(size_mb "$uncompressed") MB uncompressed ($(size_mb "$(stat -c %s "$output")") MB archive)" >&2

if [[ -n $import ]]; then
  ctr --address "$import" -n k8s.io images import --base-name "$name" "$output" >&2
  echo "image.sh: imported as $name:$tag into the containerd at $import (namespace k8s.io)" >&2
fi
echo "$output"
