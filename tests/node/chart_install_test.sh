#!/usr/bin/env bash
# The `node` tier, issue 13 step 3 (first part): the chart installed for real on a real node
# (scripts/local-node.sh up --shared-bpffs) with the locally built image (scripts/image.sh,
# imagePullPolicy Never): the operator Deployment Ready and holding its Lease, the agent
# DaemonSet pod Ready, bpfchain-cni appended to the node's conflist by the init container, and
# a host-interface chain (the counter package, XDP, on a veth the test makes) Ready with XDP
# attached to the interface. Then helm uninstall, node down, nothing left. Run as root.
#   chart_install_test.sh BUILD_DIR
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(readlink -f "${1:?usage: chart_install_test.sh BUILD_DIR}")
node_sh=$root/scripts/local-node.sh
helm=$("$root/tools/envtest/build.sh")/helm
fail() { echo "FAIL: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
veth=bpfnodet0
ns=bpfchain-system

cni_netns() { ls /var/run/netns 2>/dev/null | grep '^cni-' | sort || true; }
cni_before=$(cni_netns)
dir=$(mktemp -d "${TMPDIR:-/tmp}/bpfchain-node.XXXXXX")
rmdir "$dir"
http_pid=""
cleanup() {
    [[ -z $http_pid ]] || kill "$http_pid" 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
    "$node_sh" down --dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

t0=$(now_ms)
env_file=$("$node_sh" up --dir "$dir" --owner-pid $$ --shared-bpffs)
# shellcheck source=/dev/null
. "$env_file"
c=$dir/cluster/certs
api() {
    local path=$1
    shift
    curl -fsS --max-time 10 --retry 5 --retry-connrefused --cacert "$c/ca.crt" \
        --cert "$c/admin.crt" --key "$c/admin.key" "$@" "$BPFCHAIN_APISERVER_URL$path"
}
py() { python3 -c "$1" "${@:2}"; }
# wait_for DESCRIPTION COMMAND...: retries COMMAND for up to 120 s.
wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < 600; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "$what"
}

"$root/scripts/image.sh" --build-dir "$build" --import "$CONTAINERD_ADDRESS" >/dev/null 2>&1 ||
    fail "scripts/image.sh --import"
t1=$(now_ms)
"$helm" install bpfchain "$root/charts/bpfchain" --namespace "$ns" --create-namespace \
    --set image.pullPolicy=Never --set operator.replicas=1 \
    --set cni.binDir="$BPFCHAIN_CNI_BIN_DIR" --set cni.confDir="$BPFCHAIN_CNI_CONF_DIR" \
    >/dev/null || fail "helm install"

all_ready() { # LABEL_SELECTOR: every pod Running and Ready, at least one
    api "/api/v1/namespaces/$ns/pods?labelSelector=$1" | py '
import json, sys
items = json.load(sys.stdin)["items"]
ok = items and all(p["status"].get("phase") == "Running" and any(
    c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    for p in items)
sys.exit(0 if ok else 1)'
}
wait_for "agent pod not Ready" all_ready app.kubernetes.io/component%3Dagent
t_agent=$(($(now_ms) - t1))
wait_for "operator pod not Ready" all_ready app.kubernetes.io/component%3Doperator
lease_held() {
    api "/apis/coordination.k8s.io/v1/namespaces/$ns/leases/bpfchain-operator" |
        py 'import json,sys; sys.exit(0 if json.load(sys.stdin)["spec"].get("holderIdentity") else 1)'
}
wait_for "operator holds no Lease" lease_held
py '
import glob, json, sys
confs = sorted(glob.glob(sys.argv[1] + "/*.conflist"))
types = [p["type"] for p in json.load(open(confs[0]))["plugins"]]
sys.exit(0 if types[-1] == "bpfchain-cni" and types[0] == "bridge" else "conflist plugins: %s" % types)' \
    "$BPFCHAIN_CNI_CONF_DIR" || fail "bpfchain-cni not appended to the node's conflist"

# A host-interface chain: the counter on a veth in the host's netns, package over HTTP.
ip link add "$veth" type veth peer name "${veth}p"
ip link set "$veth" up
ip link set "${veth}p" up
port=$(py 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$port" -d "$root/examples/packages" >/dev/null 2>&1 &
http_pid=$!
sha=$(sha256sum "$root/examples/packages/counter-1.0.0.tar.gz" | cut -d' ' -f1)
t2=$(now_ms)
api /apis/bpfchain.io/v1alpha1/bpfchains -X POST -H 'Content-Type: application/json' -d '{
  "apiVersion": "bpfchain.io/v1alpha1", "kind": "BpfChain", "metadata": {"name": "count-node"},
  "spec": {"hook": "xdp", "interfaces": {"names": ["'"$veth"'"]},
    "programs": [{"name": "count", "entry": "counter_xdp",
      "package": {"url": "http://127.0.0.1:'"$port"'/counter-1.0.0.tar.gz", "sha256": "'"$sha"'"}}]}}' \
    >/dev/null || fail "creating the BpfChain"
chain_ready() {
    api /apis/bpfchain.io/v1alpha1/bpfchains/count-node | py '
import json, sys
s = json.load(sys.stdin).get("status", {})
ok = s.get("ready") == "1/1" and any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in s.get("conditions", []))
sys.exit(0 if ok else 1)'
}
wait_for "BpfChain count-node not Ready" chain_ready
t_chain=$(($(now_ms) - t2))
ip -d link show "$veth" | grep -q ' xdp' || fail "no XDP program on $veth"
rss() { ps -o rss= -p "$(cat "$dir/$1.pid")" | tr -d ' '; }
mem="kubelet $(rss kubelet) KiB, containerd $(rss containerd) KiB"

# Chains first (the agents detach them), then the release, as docs/operations.md says.
api /apis/bpfchain.io/v1alpha1/bpfchains/count-node -X DELETE >/dev/null
chain_gone() { ! api /apis/bpfchain.io/v1alpha1/bpfchains/count-node; }
wait_for "BpfChain count-node not deleted" chain_gone
xdp_gone() { ! ip -d link show "$veth" | grep -q ' xdp'; }
wait_for "XDP program still on $veth after the chain's deletion" xdp_gone
"$helm" uninstall bpfchain --namespace "$ns" --wait >/dev/null || fail "helm uninstall"
# The chart does not remove the CNI entry on uninstall yet (docs/operations.md: the init
# container installs it once); the documented removal is `bpfchain-cni uninstall`.
"$build/bin/bpfchain-cni" uninstall --bin-dir "$BPFCHAIN_CNI_BIN_DIR" \
    --conf-dir "$BPFCHAIN_CNI_CONF_DIR" >/dev/null || fail "bpfchain-cni uninstall"
py '
import glob, json, sys
confs = sorted(glob.glob(sys.argv[1] + "/*.conflist"))
types = [p["type"] for p in json.load(open(confs[0]))["plugins"]]
sys.exit(0 if "bpfchain-cni" not in types else "conflist plugins after uninstall: %s" % types)' \
    "$BPFCHAIN_CNI_CONF_DIR" || fail "bpfchain-cni still in the node's conflist after bpfchain-cni uninstall"
t3=$(now_ms)
kill "$http_pid"
http_pid=""
ip link del "$veth"
"$node_sh" down --dir "$dir"
t_down=$(($(now_ms) - t3))
trap - EXIT

[[ ! -e $dir ]] || fail "$dir still exists"
new_netns=$(comm -13 <(printf '%s\n' "$cni_before") <(printf '%s\n' "$(cni_netns)"))
[[ -z $new_netns ]] || fail "sandbox netns left: $new_netns"
! awk '$5 == "/sys/fs/bpf" {f=1} END {exit !f}' /proc/self/mountinfo || fail "/sys/fs/bpf is still a mount"
! grep -qF "$dir" /proc/self/mountinfo || fail "mounts under $dir remain"
for cg in /sys/fs/cgroup/*/kubepods; do [[ ! -d $cg ]] || fail "cgroup $cg remains"; done
echo "helm install -> agent Ready ${t_agent} ms; chain create -> Ready ${t_chain} ms; down ${t_down} ms; whole test $(($(now_ms) - t0)) ms; $mem"
echo PASS
