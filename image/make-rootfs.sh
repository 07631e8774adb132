#!/usr/bin/env bash
# The image's root file system, from Debian's packages. The Containerfile's rootfs stage and
# scripts/image.sh both run this script with image/runtime-packages.txt, so there is one
# definition of what the image holds:
#   image/make-rootfs.sh BIN_DIR ROOTFS    copy the binaries and what they need into ROOTFS
#   image/make-rootfs.sh --check BIN_DIR   only check runtime-packages.txt against the binaries
# ROOTFS gets: the binaries, stripped, in /usr/bin (bpfchain-operator, bpfchain-agent,
# bpfchain-cni, bpfchain-pkg, kubectl-bpfchain); the shared libraries
# they load (their ldd closure) at their Debian paths; the CA bundle of ca-certificates (https
# package URLs); /etc/passwd, /etc/group, /etc/nsswitch.conf; /tmp; the licenses (LICENSE and
# each package's Debian copyright file). Nothing else: no shell, no package manager.
# The check: every library comes from a package listed in runtime-packages.txt, and every
# listed package is needed (by a library, or ca-certificates for the bundle). It fails naming
# the difference, so a new dependency cannot slip into one build and not the other.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list=$here/runtime-packages.txt
required=(bpfchain-operator bpfchain-agent bpfchain-cni bpfchain-pkg kubectl-bpfchain)

check_only=0
if [[ ${1:-} == --check ]]; then
  check_only=1
  shift
fi
if ((check_only ? $# != 1 : $# != 2)); then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
bin_dir=$1
rootfs=${2:-}
die() { echo "make-rootfs.sh: $*" >&2; exit 1; }

binaries=()
for b in "${required[@]}"; do
  [[ -x $bin_dir/$b ]] || die "$bin_dir/$b: missing (build it first)"
  binaries+=("$bin_dir/$b")
done

# The libraries the binaries load, as ldd resolves them (the static bpfchain-cni has none).
libraries=()
for b in "${binaries[@]}"; do
  out=$(ldd "$b" 2>&1) || { [[ $out == *"not a dynamic executable"* ]] && continue; die "ldd $b: $out"; }
  if grep -q 'not found' <<<"$out"; then die "$b: libraries not found: $(grep 'not found' <<<"$out")"; fi
  while read -r path; do libraries+=("$path"); done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out")
done
mapfile -t libraries < <(printf '%s\n' "${libraries[@]}" | sort -u)

# The package owning a file. Debian 12 is merged-/usr: dpkg knows a file under one of
# /lib/... and /usr/lib/..., whichever the package shipped.
owner() {
  local p=$1 alt
  if [[ $p == /usr/* ]]; then alt=${p#/usr}; else alt=/usr$p; fi
  for candidate in "$p" "$alt" "$(readlink -f "$p")"; do
    dpkg-query -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
  done
  return 1
}
declare -A needed=([ca-certificates]="the CA bundle")
for l in "${libraries[@]}"; do
  pkg=$(owner "$l") || die "$l: no Debian package owns it"
  needed[$pkg]+="${needed[$pkg]:+ }$(basename "$l")"
done
[[ -f $list ]] || die "$list: missing"
mapfile -t listed < <(sed 's/#.*//' "$list" | awk 'NF {print $1}' | sort -u)
mapfile -t wanted < <(printf '%s\n' "${!needed[@]}" | sort -u)
if [[ ${listed[*]} != "${wanted[*]}" ]]; then
  {
    echo "make-rootfs.sh: $list does not match what the binaries need"
    comm -13 <(printf '%s\n' "${listed[@]}") <(printf '%s\n' "${wanted[@]}") |
      while read -r p; do echo "  missing from the list: $p (${needed[$p]})"; done
    comm -23 <(printf '%s\n' "${listed[@]}") <(printf '%s\n' "${wanted[@]}") |
      while read -r p; do echo "  listed but not needed: $p"; done
  } >&2
  exit 1
fi
((check_only)) && { echo "make-rootfs.sh: $list matches the ${#libraries[@]} libraries of ${#binaries[@]} binaries"; exit 0; }

[[ -d $rootfs ]] || mkdir -p "$rootfs"
[[ -z $(ls -A "$rootfs") ]] || die "$rootfs: not empty"
# Merged /usr, as Debian 12: the ELF interpreter is /lib64/ld-linux-x86-64.so.2.
mkdir -p "$rootfs"/usr/{bin,lib,lib64} "$rootfs"/etc/ssl/certs "$rootfs"/tmp
ln -s usr/bin "$rootfs/bin"
ln -s usr/lib "$rootfs/lib"
ln -s usr/lib64 "$rootfs/lib64"
chmod 1777 "$rootfs/tmp"
for b in "${binaries[@]}"; do
  install -m 0755 "$b" "$rootfs/usr/bin/"
  strip --strip-unneeded "$rootfs/usr/bin/$(basename "$b")"
done
for l in "${libraries[@]}"; do
  dest=/usr${l#/usr} # the merged-/usr path
  mkdir -p "$rootfs$(dirname "$dest")"
  cp -L "$l" "$rootfs$dest" # the file under the name the binaries ask for
done
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
# The licenses of what the image carries: bpfchain's, and each Debian package's copyright file.
mkdir -p "$rootfs/usr/share/doc/bpfchain"
cp "$here/../LICENSE" "$rootfs/usr/share/doc/bpfchain/"
for p in "${listed[@]}"; do
  if [[ -f /usr/share/doc/$p/copyright ]]; then
    mkdir -p "$rootfs/usr/share/doc/$p"
    cp /usr/share/doc/"$p"/copyright "$rootfs/usr/share/doc/$p/"
  fi
done
echo 'root:x:0:0:root:/root:/usr/sbin/nologin' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
echo "make-rootfs.sh: $rootfs: ${#binaries[@]} binaries, ${#libraries[@]} libraries from ${#listed[@]} packages, $(du -sm "$rootfs" | cut -f1) MB"
