# Sourced by build-node.sh and build-prometheus.sh: Go builds from a module directory beside
# them into ${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}/<prefix>-<key>, <key> the first
# 16 hex digits of a sha256 over the module's go.mod and go.sum, `go version`, `go env GOOS
# GOARCH GOAMD64 CGO_ENABLED`, the building script and this file. Built in a temporary
# directory beside it and renamed into place (a killed build never looks complete); concurrent
# runs serialised with flock. GOFLAGS and GOWORK are ignored (-mod=readonly against the
# committed go.sum, outside any workspace). The sourcing script sets $self (its own path).

log() { printf 'envtest/%s: %s\n' "${self##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# go_cache_args ARGS...: the scripts' command line: none (build), --print-dir (sets print_only:
# build nothing), --help (the script's leading comment).
go_cache_args() {
    print_only=0
    case "${1:-}" in
        --print-dir) print_only=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
        "") ;;
        *) die "unknown argument: $1" ;;
    esac
}

# go_cache_dir PREFIX MODULE_DIR: sets $go, $base and $out (the directory for this key).
go_cache_dir() {
    local prefix=$1 mod=$2 key
    go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
    [[ -x $go ]] || die "no go command (set GO=/path/to/go)"
    export GOWORK=off
    unset GOFLAGS
    key=$( {
        cat "$mod/go.mod" "$mod/go.sum"
        (cd "$mod" && "$go" version && "$go" env GOOS GOARCH GOAMD64 CGO_ENABLED)
        cat "$self" "${BASH_SOURCE[0]}"
    } | sha256sum | cut -c1-16)
    base=${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}
    out=$base/$prefix-$key
}

# go_build_begin: takes the lock of $out (fd 9, held until exit) and sets $tmp, a fresh
# directory beside $out, removed on exit unless go_build_end moved it into place.
go_build_begin() {
    local name=${out##*/}
    mkdir -p "$base"
    exec 9>"$base/.lock.$name"
    flock 9
    rm -rf "$base/.tmp.$name."*
    tmp=$(mktemp -d "$base/.tmp.$name.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
}

# go_build_end: $tmp becomes $out.
go_build_end() {
    chmod 755 "$tmp"
    rm -rf "$out"
    mv -T "$tmp" "$out"
    trap - EXIT
}
