#!/usr/bin/env bash
# Builds the real node's Go binaries (DESIGN.md section 8, ../shared real_node.md): kubelet,
# kube-controller-manager and kube-scheduler, from the module in node/ (the same
# k8s.io/kubernetes version and staging replacements as kube-apiserver/). Separate from
# build.sh so that the default test run neither builds them nor changes build.sh's cache key.
#
#   tools/envtest/build-node.sh              build what is missing; print ONE line: the directory
#   tools/envtest/build-node.sh --print-dir  build nothing; print it; exit 1 when incomplete
#
# The directory is ${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}/node-<key> (go-cache.sh:
# <key> over node/go.mod, node/go.sum, the Go version and this script; built beside it and
# renamed into place, concurrent runs serialised with flock). About 2.5 min per binary on 2 cores with a
# warm Go cache.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
mod=$(dirname "$self")/node
names=(kubelet kube-controller-manager kube-scheduler)
# shellcheck source=tools/envtest/go-cache.sh
. "$(dirname "$self")/go-cache.sh"
go_cache_args "$@"
go_cache_dir node "$mod"

complete() {
    local n
    [[ -f $out/.complete ]] || return 1
    for n in "${names[@]}"; do [[ -x $out/$n ]] || return 1; done
}
if complete; then echo "$out"; exit 0; fi
if ((print_only)); then log "not built yet: $out"; echo "$out"; exit 1; fi

go_build_begin
if complete; then echo "$out"; exit 0; fi

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
go_build_end
echo "$out"
