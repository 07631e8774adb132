#!/usr/bin/env bash
# The `node` tier, issue 13 step 3: the chart installed for real on a real node
# (scripts/local-node.sh up --shared-bpffs) with the locally built image (scripts/image.sh,
# imagePullPolicy Never), as docs/operations.md ("Install on a node") says, command for command:
# - the operator Deployment Ready and holding its Lease, the agent DaemonSet pod Ready, and the
#   agent's bpfchain-cni entry after the bridge in the node's conflist;
# - a host-interface chain (the counter package, XDP, on a veth the test makes) Ready with XDP
#   attached to the interface;
# - the agent pod deleted (a restart, as in a rolling update): the entry stays, the conflist is
#   never rewritten (same inode) while the next agent takes over;
# - a pods chain (portfilter dropping one TCP port, then the counter; tc-ingress on the pod's
#   host-side veth) and a pod created with kubectl whose container's FIRST action is an HTTP GET
#   to the blocked port on the host, then one to an open port: the first is dropped and the
#   second answered, so the chain was on the veth before the container ran; the agent's status
#   shows the pod's hook and the drops;
# - helm uninstall: the agent, seeing its DaemonSet gone, removes the entry and the plugin
#   binary, and a new pod still starts. Then node down, nothing left. Run as root.
#   chart_install_test.sh BUILD_DIR
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(readlink -f "${1:?usage: chart_install_test.sh BUILD_DIR}")
node_sh=$root/scripts/local-node.sh
helm=$("$root/tools/envtest/build.sh")/helm
# fail MESSAGE: says why, with what the node and the agent reported (once the API server is up).
fail() {
    echo "FAIL: $*" >&2
    if declare -F api >/dev/null; then
        echo "--- BpfNodeConfig status:" >&2
        api "/apis/bpfchain.io/v1alpha1/bpfnodeconfigs/${BPFCHAIN_NODE_NAME:-}" 2>/dev/null |
            py 'import json,sys; print(json.dumps(json.load(sys.stdin).get("status"), indent=1))' >&2 || true
        echo "--- agent log (tail):" >&2
        local p
        for p in $(api "/api/v1/namespaces/$ns/pods?labelSelector=app.kubernetes.io/component%3Dagent" 2>/dev/null |
            py 'import json,sys; print(" ".join(p["metadata"]["name"] for p in json.load(sys.stdin)["items"]))' 2>/dev/null); do
            api "/api/v1/namespaces/$ns/pods/$p/log?tailLines=30" >&2 2>/dev/null || true
        done
    fi
    exit 1
}
now_ms() { date +%s%3N; }
veth=bpfnodet0
ns=bpfchain-system

cni_netns() { ls /var/run/netns 2>/dev/null | grep '^cni-' | sort || true; }
cni_before=$(cni_netns)
dir=$(mktemp -d "${TMPDIR:-/tmp}/bpfchain-node.XXXXXX")
rmdir "$dir"
http_pid=""
web_pids=()
cleanup() {
    [[ -z $http_pid ]] || kill "$http_pid" 2>/dev/null || true
    for p in "${web_pids[@]}"; do kill "$p" 2>/dev/null || true; done
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
kubectl -n "$ns" rollout status ds/bpfchain-agent --timeout=120s >/dev/null || fail "agent DaemonSet not rolled out"
wait_for "agent pod not Ready" all_ready app.kubernetes.io/component%3Dagent
t_agent=$(($(now_ms) - t1))
agent_restarts=$(api "/api/v1/namespaces/$ns/pods?labelSelector=app.kubernetes.io/component%3Dagent" |
    py 'import json,sys; print(sum(c.get("restartCount", 0) for p in json.load(sys.stdin)["items"] for c in p["status"].get("containerStatuses", [])))')
kubectl -n "$ns" rollout status deploy/bpfchain-operator --timeout=120s >/dev/null || fail "operator Deployment not rolled out"
lease_held() {
    api "/apis/coordination.k8s.io/v1/namespaces/$ns/leases/bpfchain-operator" |
        py 'import json,sys; sys.exit(0 if json.load(sys.stdin)["spec"].get("holderIdentity") else 1)'
}
wait_for "operator holds no Lease" lease_held
conflist() { ls "$BPFCHAIN_CNI_CONF_DIR"/*.conflist | head -n1; }
entry_present() { # exit 0 when bpfchain-cni is the last plugin after the bridge
    py '
import json, sys
types = [p["type"] for p in json.load(open(sys.argv[1]))["plugins"]]
sys.exit(0 if types[-1] == "bpfchain-cni" and types[0] == "bridge" else "conflist plugins: %s" % types)' \
        "$(conflist)"
}
# The agent writes the entry once its socket serves: soon after it is Ready.
wait_for "bpfchain-cni not appended to the node's conflist by the agent" entry_present
[[ -x $BPFCHAIN_CNI_BIN_DIR/bpfchain-cni ]] || fail "the agent did not install $BPFCHAIN_CNI_BIN_DIR/bpfchain-cni"
grep -q '"failurePolicy": *"fail"' "$(conflist)" || fail "entry without failurePolicy fail: $(cat "$(conflist)")"

# A restart (what a rolling update does to each agent): the DaemonSet stays, so the stopping
# agent keeps the entry, and the conflist is not rewritten at all (same inode: nothing removed
# the entry and put it back).
agent_pod() {
    api "/api/v1/namespaces/$ns/pods?labelSelector=app.kubernetes.io/component%3Dagent" |
        py 'import json,sys; print(" ".join(p["metadata"]["name"] for p in json.load(sys.stdin)["items"]))'
}
old_agent=$(agent_pod)
inode=$(stat -c %i "$(conflist)")
t_r=$(now_ms)
api "/api/v1/namespaces/$ns/pods/$old_agent" -X DELETE >/dev/null || fail "deleting agent pod $old_agent"
new_agent_ready() { local p; p=$(agent_pod); [[ -n $p && $p != *"$old_agent"* ]] && all_ready app.kubernetes.io/component%3Dagent; }
wait_for "no new agent pod Ready after deleting $old_agent" new_agent_ready
t_restart=$(($(now_ms) - t_r))
entry_present || fail "bpfchain-cni entry gone after an agent restart"
[[ $(stat -c %i "$(conflist)") == "$inode" ]] ||
    fail "the conflist was rewritten across an agent restart (the old agent removed the entry?)"

# A host-interface chain: the counter on a veth in the host's netns, package over HTTP.
ip link add "$veth" type veth peer name "${veth}p"
ip link set "$veth" up
ip link set "${veth}p" up
port=$(py 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$port" -d "$root/examples/packages" >/dev/null 2>&1 &
http_pid=$!
sha=$(sha256sum "$root/examples/packages/counter-1.0.0.tar.gz" | cut -d' ' -f1)
t2=$(now_ms)
kubectl apply -f - <<<'{
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
# (The probe uses nc: Debian's static busybox wget crashes with -T.)
# A pods chain: tc-ingress on a pod's host-side veth sees what the pod sends. portfilter drops
# TCP to $blocked, the counter counts the rest.
free_port() { py 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'; }
blocked=$(free_port)
open_port=$(free_port)
for p in "$blocked" "$open_port"; do
    python3 -m http.server --bind 0.0.0.0 "$p" -d "$root/examples/packages" >/dev/null 2>&1 &
    web_pids+=($!)
done
gw=10.244.0.1 # the bridge's address (local-node.sh: isGateway) is the pods' way to the host
pf_sha=$(sha256sum "$root/examples/packages/portfilter-1.0.0.tar.gz" | cut -d' ' -f1)
kubectl apply -f - <<<'{
  "apiVersion": "bpfchain.io/v1alpha1", "kind": "BpfChain", "metadata": {"name": "pods-node"},
  "spec": {"hook": "tc-ingress",
    "pods": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
             "podSelector": {"matchLabels": {"app": "bpfchain-probe"}}},
    "programs": [
      {"name": "filter", "entry": "portfilter_tc",
       "package": {"url": "http://127.0.0.1:'"$port"'/portfilter-1.0.0.tar.gz", "sha256": "'"$pf_sha"'"},
       "mapArgs": [{"map": "portfilter_ports", "entries": [{"key": "'"$blocked"'", "value": "1"}]}]},
      {"name": "count", "entry": "counter_tc",
       "package": {"url": "http://127.0.0.1:'"$port"'/counter-1.0.0.tar.gz", "sha256": "'"$sha"'"}}]}}' \
    >/dev/null || fail "creating the pods BpfChain"
# Before any pod: the node has the chain and nothing to attach it to (Idle).
node_phase() { # CHAIN PHASE: the chain's phase in the node's BpfNodeConfig status
    api "/apis/bpfchain.io/v1alpha1/bpfnodeconfigs/$BPFCHAIN_NODE_NAME" | py '
import json, sys
chains = json.load(sys.stdin).get("status", {}).get("chains", [])
sys.exit(0 if any(c.get("name") == sys.argv[1] and c.get("phase") == sys.argv[2] for c in chains) else 1)' "$1" "$2"
}
wait_for "chain pods-node not Idle on the node before its pod exists" node_phase pods-node Idle
t4=$(now_ms)
kubectl apply -f - <<<'{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "probe", "labels": {"app": "bpfchain-probe"}},
  "spec": {"terminationGracePeriodSeconds": 1,
    "containers": [{"name": "probe", "image": "bpfchain.local/busybox:1", "imagePullPolicy": "Never",
      "command": ["sh", "-c", "for p in '"$blocked $open_port"'; do r=$(printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 3 '"$gw"' $p); case \"$r\" in *\"200 OK\"*) echo port $p answered;; *) echo port $p dropped;; esac; done; sleep 3600"]}]}}' \
    >/dev/null || fail "creating the probe pod"
probe_done() {
    local logs
    logs=$(api /api/v1/namespaces/default/pods/probe/log 2>/dev/null) || return 1
    [[ $logs == *"port $open_port"* ]]
}
wait_for "probe pod did not report both ports" probe_done
t_probe=$(($(now_ms) - t4))
logs=$(api /api/v1/namespaces/default/pods/probe/log)
[[ $logs == *"port $blocked dropped"* ]] ||
    fail "the probe's first packets to the blocked port $blocked were not dropped (chain not on the veth before the container ran?): $logs"
[[ $logs == *"port $open_port answered"* ]] || fail "the probe could not reach the open port $open_port: $logs"
wait_for "chain pods-node not Ready on the node with its pod" node_phase pods-node Ready
# The agent's own view (its socket is the host's /run/bpfchain): the pod's hook with both
# programs in order, and the filter's drops (the counter keeps no chain.h verdicts).
status=$("$build/bin/bpfchain-agent" status --socket /run/bpfchain/agent.sock -o json) ||
    fail "bpfchain-agent status"
py '
import json, sys
s = json.loads(sys.argv[1])
hooks = [h for h in s["hooks"] if "probe" in h["pod"] and h["hook"] == "tc-ingress"]
assert hooks, "no tc-ingress hook for the probe pod: %s" % s["hooks"]
verdicts = {(p["program"], v["verdict"]): v["packets"] for p in hooks[0]["programs"] for v in p["verdicts"]}
assert verdicts.get(("filter", "shot"), 0) >= 1, "no drop counted by the filter: %s" % verdicts
assert verdicts[("filter", "seen")] > verdicts[("filter", "shot")], "the filter passed nothing: %s" % verdicts
programs = [p["program"] for p in hooks[0]["programs"]]
assert programs == ["filter", "count"], "programs on the probe pod hook: %s" % programs
print("probe pod %s on %s: %s" % (hooks[0]["pod"], hooks[0]["interface"], verdicts))' "$status" ||
    fail "agent status: $status"
kubectl delete pod probe --timeout=60s >/dev/null || fail "deleting the probe pod"
probe_gone() { ! api /api/v1/namespaces/default/pods/probe; }
wait_for "probe pod not deleted" probe_gone

rss() { ps -o rss= -p "$(cat "$dir/$1.pid")" | tr -d ' '; }
mem="kubelet $(rss kubelet) KiB, containerd $(rss containerd) KiB"

# Chains first (the agents detach them), then the release, as docs/operations.md says.
kubectl delete bpfchain count-node pods-node --timeout=120s >/dev/null || fail "deleting the BpfChains"
chain_gone() { ! api "/apis/bpfchain.io/v1alpha1/bpfchains/$1"; }
wait_for "BpfChain count-node not deleted" chain_gone count-node
wait_for "BpfChain pods-node not deleted" chain_gone pods-node
xdp_gone() { ! ip -d link show "$veth" | grep -q ' xdp'; }
wait_for "XDP program still on $veth after the chain's deletion" xdp_gone
t_u=$(now_ms)
"$helm" uninstall bpfchain --namespace "$ns" --wait >/dev/null || fail "helm uninstall"
# The agent pod is stopped after its DaemonSet is gone: it removes the entry and the binary.
entry_gone() { ! entry_present && [[ ! -e $BPFCHAIN_CNI_BIN_DIR/bpfchain-cni ]]; }
wait_for "bpfchain-cni still in the node's conflist after helm uninstall: $(cat "$(conflist)")" entry_gone
t_uninstall=$(($(now_ms) - t_u))
# A new pod still starts: nothing on the node waits for an agent that is gone.
kubectl apply -f - <<<'{
  "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "after-uninstall"},
  "spec": {"terminationGracePeriodSeconds": 1,
    "containers": [{"name": "c", "image": "bpfchain.local/busybox:1", "imagePullPolicy": "Never",
      "command": ["sleep", "3600"]}]}}' >/dev/null || fail "creating a pod after the uninstall"
pod_running() { api /api/v1/namespaces/default/pods/after-uninstall | py 'import json,sys; sys.exit(0 if json.load(sys.stdin)["status"].get("phase") == "Running" else 1)'; }
wait_for "a pod created after helm uninstall is not Running" pod_running
t3=$(now_ms)
kill "$http_pid" "${web_pids[@]}"
web_pids=()
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
echo "helm install -> agent Ready ${t_agent} ms (agent restarts: ${agent_restarts}); chain create -> Ready ${t_chain} ms; agent restart -> new agent Ready ${t_restart} ms; probe pod create -> both ports tried ${t_probe} ms; helm uninstall -> entry removed ${t_uninstall} ms; down ${t_down} ms; whole test $(($(now_ms) - t0)) ms; $mem"
echo PASS
