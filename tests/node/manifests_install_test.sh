#!/usr/bin/env bash
# The `node` tier, issue 13: the install without Helm, `kubectl apply -f crds/` and
# `kubectl apply -f manifests/` unchanged, on a real node (scripts/local-node.sh up
# --shared-bpffs --host-cni-dirs: the node's CNI configuration in /etc/cni/net.d and plugins in
# /opt/cni/bin, where manifests/ mount them), as docs/operations.md ("Step by step on one node",
# without Helm) says, command for command:
# - the operator Deployment (2 replicas, one holding the Lease) and the agent DaemonSet rolled
#   out; the agent's bpfchain-cni entry in /etc/cni/net.d and its binary in /opt/cni/bin;
# - a host-interface chain (the counter, XDP, on a veth the test makes) Ready, XDP attached;
# - the chains deleted, then `kubectl delete -f manifests/`: the agent removes the entry and
#   the binary; the node keeps no pin under /sys/fs/bpf/bpfchain, no BPF link or XDP program
#   of the chain; a pod created afterwards runs. Then node down, nothing left.
#   manifests_install_test.sh BUILD_DIR
set -euo pipefail
# shellcheck source=scripts/lib/node-test.sh
. "$(dirname "$0")/../../scripts/lib/node-test.sh"
build=$(readlink -f "${1:?usage: manifests_install_test.sh BUILD_DIR}")
veth=bpfnodem0
cleanup() {
    stop_servers
    ip link del "$veth" 2>/dev/null || true
    "$node_sh" down --dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

t0=$(now_ms)
node_up --shared-bpffs --host-cni-dirs
[[ $BPFCHAIN_CNI_CONF_DIR == /etc/cni/net.d && $BPFCHAIN_CNI_BIN_DIR == /opt/cni/bin ]] ||
    fail "the node's CNI directories are $BPFCHAIN_CNI_CONF_DIR and $BPFCHAIN_CNI_BIN_DIR"
"$root/scripts/image.sh" --build-dir "$build" --import "$CONTAINERD_ADDRESS" >/dev/null 2>&1 ||
    fail "scripts/image.sh --import"
agent_ns=bpfchain-system
t1=$(now_ms)
kubectl apply -f "$root/crds/" >/dev/null || fail "kubectl apply -f crds/"
kubectl apply -f "$root/manifests/" >/dev/null || fail "kubectl apply -f manifests/"
kubectl -n bpfchain-system rollout status ds/bpfchain-agent deploy/bpfchain-operator --timeout=120s \
    >/dev/null || fail "manifests/ not rolled out"
wait_for "agent pod not Ready" all_ready app.kubernetes.io/name%3Dbpfchain-agent
t_agent=$(($(now_ms) - t1))
wait_for "operator holds no Lease" lease_held
wait_for "bpfchain-cni not appended to /etc/cni/net.d's conflist by the agent" entry_present
[[ -x /opt/cni/bin/bpfchain-cni ]] || fail "the agent did not install /opt/cni/bin/bpfchain-cni"

ip link add "$veth" type veth peer name "${veth}p"
ip link set "$veth" up
ip link set "${veth}p" up
port=$(free_port 127.0.0.1)
serve_packages 127.0.0.1 "$port"
sha=$(sha256sum "$root/examples/packages/counter-1.0.0.tar.gz" | cut -d' ' -f1)
t2=$(now_ms)
kubectl apply -f - <<<'{
  "apiVersion": "bpfchain.io/v1alpha1", "kind": "BpfChain", "metadata": {"name": "count-manifests"},
  "spec": {"hook": "xdp", "interfaces": {"names": ["'"$veth"'"]},
    "programs": [{"name": "count", "entry": "counter_xdp",
      "package": {"url": "http://127.0.0.1:'"$port"'/counter-1.0.0.tar.gz", "sha256": "'"$sha"'"}}]}}' \
    >/dev/null || fail "creating the BpfChain"
wait_for "BpfChain count-manifests not Ready" chain_ready count-manifests
t_chain=$(($(now_ms) - t2))
ip -d link show "$veth" | grep -q ' xdp' || fail "no XDP program on $veth"
pins=$(find /sys/fs/bpf/bpfchain -type f 2>/dev/null | wc -l)
((pins > 0)) || fail "no pins under /sys/fs/bpf/bpfchain while a chain runs"
links_on_veth() { # BPF links attached to $veth
    local ifindex
    ifindex=$(cat "/sys/class/net/$veth/ifindex")
    bpftool -j link show | py '
import json, sys
print(sum(1 for l in json.load(sys.stdin) if l.get("ifindex") == int(sys.argv[1])))' "$ifindex"
}

# Removal as docs/operations.md says: chains first (the agent detaches them and removes their
# pins), then manifests/ (the agent, seeing its DaemonSet gone, removes the entry and binary).
kubectl delete bpfchains --all --timeout=300s >/dev/null || fail "kubectl delete bpfchains --all"
xdp_gone() { ! ip -d link show "$veth" | grep -q ' xdp'; }
wait_for "XDP program still on $veth after the chain's deletion" xdp_gone
[[ $(links_on_veth) == 0 ]] || fail "BPF links left on $veth: $(bpftool link show)"
t_u=$(now_ms)
kubectl delete -f "$root/manifests/" --wait --timeout=120s >/dev/null || fail "kubectl delete -f manifests/"
wait_for "bpfchain-cni still in /etc/cni/net.d after kubectl delete -f manifests/: $(cat "$(conflist)")" entry_gone
agent_gone() { [[ -z $(agent_pod 2>/dev/null) ]]; }
wait_for "agent pod still there after kubectl delete -f manifests/" agent_gone
t_uninstall=$(($(now_ms) - t_u))
left=$(find /sys/fs/bpf/bpfchain -mindepth 1 -not -type d 2>/dev/null || true)
[[ -z $left ]] || fail "pins left under /sys/fs/bpf/bpfchain after the uninstall: $left"
new_pod_runs "kubectl delete -f manifests/"
kubectl delete -f "$root/crds/" --timeout=60s >/dev/null || fail "kubectl delete -f crds/"
mem=$(node_rss)
# What the agent keeps on the node after the uninstall (docs/operations.md): its state dir's
# empty directories (no file), its bpffs with an empty bpfchain directory.
state_left=$(cd /var/lib/bpfchain 2>/dev/null && find . -mindepth 1 | sort | tr '\n' ' ')
files=$(find /var/lib/bpfchain -not -type d 2>/dev/null || true)
[[ -z $files ]] || fail "files left in the agent's state dir after the uninstall: $files"
bpffs_left=$(cd /sys/fs/bpf 2>/dev/null && find . -mindepth 1 | sort | tr '\n' ' ')

t3=$(now_ms)
stop_servers
ip link del "$veth"
"$node_sh" down --dir "$dir"
t_down=$(($(now_ms) - t3))
trap - EXIT
assert_node_clean
[[ ! -e /etc/cni/net.d/10-bpfchain-node.conflist && ! -e /opt/cni/bin/bridge ]] ||
    fail "local-node.sh down left its files in /etc/cni/net.d or /opt/cni/bin"
echo "kubectl apply -f manifests/ -> agent Ready ${t_agent} ms; chain create -> Ready ${t_chain} ms; kubectl delete -f manifests/ -> entry removed, agent gone ${t_uninstall} ms; down ${t_down} ms; left in /var/lib/bpfchain: [${state_left}], in /sys/fs/bpf: [${bpffs_left}]; whole test $(($(now_ms) - t0)) ms; $mem"
echo PASS
