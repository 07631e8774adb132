#!/usr/bin/env bash
# Builds the test bed's Go tools (DESIGN.md section 8) from the four tools modules beside this
# script: kube-apiserver, etcd, cnitool and helm.
#
# Contract:
#   tools/envtest/build.sh               build what is missing; print ONE line on stdout: the
#                                        directory that holds all four binaries.
#   tools/envtest/build.sh --print-dir   build nothing; print that directory; exit 1 when it is
#                                        not complete.
#   Progress and errors go to stderr.
#
# The directory is ${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}/<key>, <key> being the first
# 16 hex digits of a sha256 over the four go.mod + go.sum, `go version`, `go env GOOS GOARCH
# GOAMD64 CGO_ENABLED` and this script. A directory is complete when it holds the four binaries
# and a `.complete` marker; it is built in a temporary directory beside it and renamed into place,
# so a killed build never leaves a directory that looks complete. Concurrent runs are serialised
# with flock.
#
# KUBEBUILDER_ASSETS: when set and holding kube-apiserver and etcd, those two are not built. The
# printed directory is then <key>-assets-<hash of the assets path>, holding symlinks to
# $KUBEBUILDER_ASSETS/kube-apiserver and etcd plus cnitool and helm (copied from <key> when that
# is complete, built otherwise). When it is set but lacks either binary, a warning is printed and
# it is ignored.
#
# Environment: GO (the go command; default: go on PATH, else /usr/local/go/bin/go),
# BPFCHAIN_TOOLS_DIR, KUBEBUILDER_ASSETS. GOFLAGS and GOWORK are ignored (builds are
# -mod=readonly against the committed go.sum files, outside any workspace); GOCACHE, GOMODCACHE,
# GOPROXY are honoured.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$self")
names=(kube-apiserver etcd cnitool helm)

log() { printf 'envtest/build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2
}

print_only=0
while (($#)); do
    case "$1" in
        --print-dir) print_only=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; die "unknown argument: $1" ;;
    esac
    shift
done

if [[ -n "${GO:-}" ]]; then
    go=$GO
elif command -v go >/dev/null 2>&1; then
    go=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then
    go=/usr/local/go/bin/go
else
    die "no go command (set GO=/path/to/go)"
fi
command -v jq >/dev/null 2>&1 || die "jq is required"

for n in "${names[@]}"; do
    [[ -f "$here/$n/go.mod" && -f "$here/$n/go.sum" ]] || die "missing $here/$n/go.mod or go.sum"
done

# Never let a go.work above the repo or a GOFLAGS=-mod=mod from the caller change what is built.
export GOWORK=off
unset GOFLAGS

# --- cache key ---------------------------------------------------------------------------------
key=$(
    {
        for n in "${names[@]}"; do
            for f in go.mod go.sum; do
                printf '== %s/%s\n' "$n" "$f"
                cat "$here/$n/$f"
            done
        done
        printf '== go\n'
        # Inside a module, so that a toolchain switch by its go directive is seen.
        (cd "$here/kube-apiserver" && "$go" version && "$go" env GOOS GOARCH GOAMD64 CGO_ENABLED)
        printf '== script\n'
        cat "$self"
    } | sha256sum | cut -c1-16
) || die "cannot compute the cache key"

base=${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}

assets=""
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    if [[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
        assets=$(readlink -f "$KUBEBUILDER_ASSETS")
    else
        log "warning: KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd; ignoring it"
    fi
fi

full="$base/$key"
if [[ -n "$assets" ]]; then
    out="$base/$key-assets-$(printf '%s' "$assets" | sha256sum | cut -c1-12)"
else
    out=$full
fi

complete() { # DIR
    local n
    [[ -f "$1/.complete" ]] || return 1
    for n in "${names[@]}"; do
        [[ -x "$1/$n" ]] || return 1
    done
}

if complete "$out"; then
    printf '%s\n' "$out"
    exit 0
fi
if ((print_only)); then
    log "not built yet: $out"
    printf '%s\n' "$out"
    exit 1
fi

# --- build -------------------------------------------------------------------------------------
mkdir -p "$base"
exec 9>"$base/.lock.$(basename "$out")"
if ! flock -n 9; then
    log "another build of $(basename "$out") is running; waiting for it..."
    flock 9
fi
if complete "$out"; then # built by whoever held the lock
    printf '%s\n' "$out"
    exit 0
fi

# Leftovers of killed builds of this key (we hold the lock, so nobody is using them).
rm -rf "$base/.tmp.$(basename "$out")."*
tmp=$(mktemp -d "$base/.tmp.$(basename "$out").XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# module_json DIR: go.mod as JSON (parsed by go itself, offline).
module_json() { (cd "$1" && "$go" mod edit -json); }

# tool_pkg JSON: the module's single tool package.
tool_pkg() {
    jq -er '.Tool // [] | if length == 1 then .[0].Path else error("want exactly one tool directive") end' <<<"$1"
}

# module_version JSON PATH: version of the module PATH (a replace with a version wins).
module_version() {
    jq -er --arg m "$2" '
        ([.Replace[]? | select(.Old.Path == $m and (.New.Version // "") != "") | .New.Version][0])
        // ([.Require[]? | select(.Path == $m) | .Version][0])
        // error("module \($m) not required")' <<<"$1"
}

# providing_module JSON PKG: the required module that provides package PKG (longest prefix).
providing_module() {
    jq -er --arg p "$2" '
        [.Require[]? | .Path | . as $m | select($p == $m or ($p | startswith($m + "/")))]
        | max_by(length) // error("no module provides \($p)")' <<<"$1"
}

build_one() { # NAME OUTDIR
    local name=$1 dir=$2 mod json pkg modpath ver ldflags start secs
    mod="$here/$name"
    json=$(module_json "$mod") || die "cannot parse $mod/go.mod"
    pkg=$(tool_pkg "$json") || die "$mod/go.mod: expected exactly one tool directive"
    modpath=$(providing_module "$json" "$pkg") || die "$mod/go.mod: no require provides $pkg"
    ver=$(module_version "$json" "$modpath") || die "$mod/go.mod: no version for $modpath"
    ldflags="-s -w"
    case "$name" in
        kube-apiserver)
            [[ "$ver" =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "unexpected k8s.io/kubernetes version $ver"
            ldflags+=" -X k8s.io/component-base/version.gitVersion=$ver"
            ldflags+=" -X k8s.io/component-base/version.gitMajor=${BASH_REMATCH[1]}"
            ldflags+=" -X k8s.io/component-base/version.gitMinor=${BASH_REMATCH[2]}"
            ;;
        helm)
            # As helm's Makefile does: its version, and the Kubernetes version that
            # `helm template`/`helm lint` assume (from the client-go it links; else v1.20).
            local cg kmaj kmin
            ldflags+=" -X helm.sh/helm/v3/internal/version.version=$ver"
            if cg=$(module_version "$json" k8s.io/client-go 2>/dev/null) &&
                [[ "$cg" =~ ^v0\.([0-9]+)\. ]]; then
                kmaj=1 kmin=${BASH_REMATCH[1]}
                ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$kmaj"
                ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kmin"
                ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$kmaj"
                ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kmin"
            fi
            ;;
    esac
    if [[ "$name" == kube-apiserver ]]; then
        log "building $name $ver (first time takes several minutes)..."
    else
        log "building $name $ver..."
    fi
    start=$(date +%s)
    # 9>&-: the lock is ours, not the compiler's (a killed script must release it).
    (cd "$mod" && "$go" build -mod=readonly -trimpath -ldflags "$ldflags" -o "$dir/$name" "$pkg") \
        >&2 9>&- || die "building $name ($pkg) failed"
    secs=$(($(date +%s) - start))
    log "built $name in ${secs} s"
    printf '%s %s %s %ss\n' "$name" "$pkg" "$ver" "$secs" >>"$dir/.complete.tmp"
}

total_start=$(date +%s)
if [[ -n "$assets" ]]; then
    log "using kube-apiserver and etcd from KUBEBUILDER_ASSETS=$assets"
    ln -s "$assets/kube-apiserver" "$tmp/kube-apiserver"
    ln -s "$assets/etcd" "$tmp/etcd"
    for n in cnitool helm; do
        if complete "$full"; then
            cp -p "$full/$n" "$tmp/$n"
        else
            build_one "$n" "$tmp"
        fi
    done
else
    for n in "${names[@]}"; do
        build_one "$n" "$tmp"
    done
fi
{
    printf 'key %s\n' "$key"
    "$go" version
    [[ -z "$assets" ]] || printf 'assets %s\n' "$assets"
    [[ ! -f "$tmp/.complete.tmp" ]] || cat "$tmp/.complete.tmp"
} >"$tmp/.complete"
rm -f "$tmp/.complete.tmp"
chmod 755 "$tmp"

# A stale, incomplete directory with this name (e.g. made by hand) would block the rename.
if [[ -e "$out" ]]; then
    rm -rf "$out"
fi
mv -T "$tmp" "$out"
trap - EXIT
log "tools ready in $out ($(($(date +%s) - total_start)) s)"
printf '%s\n' "$out"
