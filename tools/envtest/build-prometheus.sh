#!/usr/bin/env bash
# Builds Prometheus for the node tier (tests/node: Prometheus with kubernetes_sd against the test
# bed's API server). Debian's prometheus package cannot do it: it is built without the
# kubernetes service discovery (its config parser refuses kubernetes_sd_configs). So the same
# upstream release, from the module in prometheus/ (github.com/prometheus/prometheus v0.316.0 =
# Prometheus 3.16.0), with only the file, HTTP and kubernetes service discoveries
# (-tags remove_all_sd,enable_kubernetes_sd) and no embedded web UI (the HTTP API is all the test
# reads).
#
#   tools/envtest/build-prometheus.sh              build when missing; print ONE line: the binary
#   tools/envtest/build-prometheus.sh --print-dir  build nothing; print it; exit 1 when missing
#
# The binary is ${BPFCHAIN_TOOLS_DIR:-$HOME/.cache/bpfchain/tools}/prometheus-<key>/prometheus
# (go-cache.sh, as build-node.sh). About 11 min on 2 cores with a cold Go cache.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
mod=$(dirname "$self")/prometheus
# shellcheck source=tools/envtest/go-cache.sh
. "$(dirname "$self")/go-cache.sh"
go_cache_args "$@"
go_cache_dir prometheus "$mod"
if [[ -x $out/prometheus ]]; then echo "$out/prometheus"; exit 0; fi
if ((print_only)); then log "not built yet: $out"; echo "$out/prometheus"; exit 1; fi

go_build_begin
if [[ -x $out/prometheus ]]; then echo "$out/prometheus"; exit 0; fi
ver=$(cd "$mod" && "$go" list -m -f '{{.Version}}' github.com/prometheus/prometheus)
log "building prometheus $ver (kubernetes_sd only)..."
start=$(date +%s)
(cd "$mod" && "$go" build -mod=readonly -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$ver" -o "$tmp/prometheus" \
    github.com/prometheus/prometheus/cmd/prometheus) >&2 9>&- || die "building prometheus failed"
log "built prometheus in $(($(date +%s) - start)) s"
go_build_end
echo "$out/prometheus"
