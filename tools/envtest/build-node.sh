#!/usr/bin/env bash
# Builds the real node's Go binaries (DESIGN.md section 8, ../shared real_node.md): kubelet,
# kube-controller-manager and kube-scheduler, from the module in node/ (the same
# k8s.io/kubernetes version and staging replacements as kube-apiserver/). Separate from
# build.sh so that the default test run neither builds them nor changes build.sh's cache key.
#
#   tools/envtest/build-node.sh              build what is missing; print ONE line: the directory
#   tools/envtest/build-node.sh --print-dir  build nothing; print it; exit 1 when incomplete
#
# The directory is ${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}/node-<key>, <key> the first
# 16 hex digits of a sha256 over node/go.mod, node/go.sum, `go version`, `go env GOOS GOARCH
# GOAMD64 CGO_ENABLED` and this script; built in a temporary directory and renamed into place,
# concurrent runs serialised with flock (as build.sh). About 2.5 min per binary on 2 cores with a
# warm Go cache.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
mod=$(dirname "$self")/node
names=(kubelet kube-controller-manager kube-scheduler)
log() { printf 'envtest/build-node.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

print_only=0
case "${1:-}" in
    --print-dir) print_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    "") ;;
    *) die "unknown argument: $1" ;;
esac
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[[ -x $go ]] || die "no go command (set GO=/path/to/go)"
export GOWORK=off
unset GOFLAGS

key=$( {
    cat "$mod/go.mod" "$mod/go.sum"
    (cd "$mod" && "$go" version && "$go" env GOOS GOARCH GOAMD64 CGO_ENABLED)
    cat "$self"
} | sha256sum | cut -c1-16)
base=${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}
out=$base/node-$key

complete() {
    local n
    [[ -f $out/.complete ]] || return 1
    for n in "${names[@]}"; do [[ -x $out/$n ]] || return 1; done
}
if complete; then echo "$out"; exit 0; fi
if ((print_only)); then log "not built yet: $out"; echo "$out"; exit 1; fi

mkdir -p "$base"
exec 9>"$base/.lock.node-$key"
flock 9
if complete; then echo "$out"; exit 0; fi
rm -rf "$base/.tmp.node-$key."*
tmp=$(mktemp -d "$base/.tmp.node-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ver=$(cd "$mod" && "$go" list -m -f '{{.Version}}' k8s.io/kubernetes)
[[ $ver =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "unexpected k8s.io/kubernetes version $ver"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$ver"
ldflags+=" -X k8s.io/component-base/version.gitMajor=${BASH_REMATCH[1]}"
ldflags+=" -X k8s.io/component-base/version.gitMinor=${BASH_REMATCH[2]}"
for n in "${names[@]}"; do
    log "building $n $ver..."
    start=$(date +%s)
    (cd "$mod" && "$go" build -mod=readonly -trimpath -ldflags "$ldflags" -o "$tmp/$n" \
        "k8s.io/kubernetes/cmd/$n") >&2 9>&- || die "building $n failed"
    log "built $n in $(($(date +%s) - start)) s"
    echo "$n $ver $(($(date +%s) - start))s" >>"$tmp/.complete"
done
chmod 755 "$tmp"
rm -rf "$out"
mv -T "$tmp" "$out"
trap - EXIT
echo "$out"
