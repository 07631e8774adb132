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
# shellcheck source=scripts/lib/node-test.sh
. "$(dirname "$0")/../../scripts/lib/node-test.sh"
build=$(readlink -f "${1:?usage: chart_install_test.sh BUILD_DIR}")
helm=$("$root/tools/envtest/build.sh")/helm
veth=bpfnodet0
tns=bpfct-$$-up0 # the sweeper's naming: bpfct-<pid>-...
ns=bpfchain-system

prom_pid=""
prom=""
flow_pids=()
cleanup() {
    for p in "${flow_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -z ${flow:-} ]] || rm -rf "$flow"
    [[ -z $prom_pid ]] || kill "$prom_pid" 2>/dev/null || true
    [[ -z $prom ]] || rm -rf "$prom"
    stop_servers
    ip link del "$veth" 2>/dev/null || true
    ip netns del "$tns" 2>/dev/null || true
    "$node_sh" down --dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

t0=$(now_ms)
node_up --shared-bpffs
agent_ns=$ns
"$root/scripts/image.sh" --build-dir "$build" --import "$CONTAINERD_ADDRESS" >/dev/null 2>&1 ||
    fail "scripts/image.sh --import"
t1=$(now_ms)
"$helm" install bpfchain "$root/charts/bpfchain" --namespace "$ns" --create-namespace \
    --set image.pullPolicy=Never --set operator.replicas=1 \
    --set cni.binDir="$BPFCHAIN_CNI_BIN_DIR" --set cni.confDir="$BPFCHAIN_CNI_CONF_DIR" \
    >/dev/null || fail "helm install"

kubectl -n "$ns" rollout status ds/bpfchain-agent --timeout=120s >/dev/null || fail "agent DaemonSet not rolled out"
wait_for "agent pod not Ready" all_ready app.kubernetes.io/name%3Dbpfchain-agent
t_agent=$(($(now_ms) - t1))
agent_restarts=$(api "/api/v1/namespaces/$ns/pods?labelSelector=app.kubernetes.io/name%3Dbpfchain-agent" |
    py 'import json,sys; print(sum(c.get("restartCount", 0) for p in json.load(sys.stdin)["items"] for c in p["status"].get("containerStatuses", [])))')
kubectl -n "$ns" rollout status deploy/bpfchain-operator --timeout=120s >/dev/null || fail "operator Deployment not rolled out"
wait_for "operator holds no Lease" lease_held

# Prometheus with kubernetes_sd, as a Prometheus outside the cluster runs it: the jobs of
# dashboards/prometheus/scrape.yml, the API server's address and CA, and a token of the
# ServiceAccount monitoring/prometheus with the Role of dashboards/prometheus/rbac.yaml (read
# EndpointSlices, Services, Pods in bpfchain-system). Upstream Prometheus built by
# tools/envtest/build-prometheus.sh: Debian's has no kubernetes_sd. Both targets up, and a
# bpfchain_ series of each (with the node and pod labels the scrape config adds).
prometheus=$("$root/tools/envtest/build-prometheus.sh") || fail "tools/envtest/build-prometheus.sh"
kubectl apply -f "$root/dashboards/prometheus/rbac.yaml" >/dev/null || fail "applying dashboards/prometheus/rbac.yaml"
prom=$(mktemp -d "${TMPDIR:-/tmp}/bpfchain-prom.XXXXXX")
kubectl -n monitoring create token prometheus --duration=1h >"$prom/token" ||
    fail "no token for the ServiceAccount monitoring/prometheus"
py '
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for job in cfg["scrape_configs"]:
    for sd in job["kubernetes_sd_configs"]:
        sd.update(api_server=sys.argv[2], tls_config={"ca_file": sys.argv[3]},
                  authorization={"credentials_file": sys.argv[4]})
cfg["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
print(yaml.safe_dump(cfg))' "$root/dashboards/prometheus/scrape.yml" "$BPFCHAIN_APISERVER_URL" \
    "$c/ca.crt" "$prom/token" >"$prom/prometheus.yml"
prom_port=$(free_port 127.0.0.1)
"$prometheus" --config.file="$prom/prometheus.yml" --storage.tsdb.path="$prom/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$prom/log" 2>&1 &
prom_pid=$!
prom_url=http://127.0.0.1:$prom_port
targets_up() {
    curl -fsS --max-time 5 "$prom_url/api/v1/targets?state=active" | py '
import json, sys
jobs = {}
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    jobs.setdefault(t["labels"]["job"], []).append(t["health"])
sys.exit(0 if all(jobs.get(j) and set(jobs[j]) == {"up"} for j in ("bpfchain-agent", "bpfchain-operator")) else 1)'
}
fail_context() { # what Prometheus saw, on a failure while it runs
    echo "--- Prometheus targets:"
    curl -sS --max-time 5 "$prom_url/api/v1/targets" | head -c 4000
    echo "--- Prometheus log (tail):"
    tail -n 20 "$prom/log"
}
wait_for "Prometheus: the bpfchain-agent and bpfchain-operator targets are not both up" targets_up
series() { # QUERY: the series of an instant query, as JSON
    curl -fsS --max-time 5 -G "$prom_url/api/v1/query" --data-urlencode "query=$1" |
        py 'import json,sys; print(json.dumps(json.load(sys.stdin)["data"]["result"]))'
}
has_series() { [[ $(series "$1") != "[]" ]]; }
wait_for "Prometheus has no bpfchain_agent_info from the agent" \
    has_series "bpfchain_agent_info{job=\"bpfchain-agent\",node=\"$BPFCHAIN_NODE_NAME\",pod=~\"bpfchain-agent-.*\"}"
wait_for "Prometheus has no bpfchain_operator_leader == 1 from the operator" \
    has_series 'bpfchain_operator_leader{job="bpfchain-operator",pod=~"bpfchain-operator-.*"} == 1'
kill "$prom_pid"
wait "$prom_pid" 2>/dev/null || true
prom_pid=""
unset -f fail_context
rm -rf "$prom"
# The agent writes the entry once its socket serves: soon after it is Ready.
wait_for "bpfchain-cni not appended to the node's conflist by the agent" entry_present
[[ -x $BPFCHAIN_CNI_BIN_DIR/bpfchain-cni ]] || fail "the agent did not install $BPFCHAIN_CNI_BIN_DIR/bpfchain-cni"
grep -q '"failurePolicy": *"fail"' "$(conflist)" || fail "entry without failurePolicy fail: $(cat "$(conflist)")"

# A restart (what a rolling update does to each agent): the DaemonSet stays, so the stopping
# agent keeps the entry, and the conflist is not rewritten at all (same inode: nothing removed
# the entry and put it back).
old_agent=$(agent_pod)
inode=$(stat -c %i "$(conflist)")
t_r=$(now_ms)
api "/api/v1/namespaces/$ns/pods/$old_agent" -X DELETE >/dev/null || fail "deleting agent pod $old_agent"
new_agent_ready() { local p; p=$(agent_pod); [[ -n $p && $p != *"$old_agent"* ]] && all_ready app.kubernetes.io/name%3Dbpfchain-agent; }
wait_for "no new agent pod Ready after deleting $old_agent" new_agent_ready
t_restart=$(($(now_ms) - t_r))
entry_present || fail "bpfchain-cni entry gone after an agent restart"
[[ $(stat -c %i "$(conflist)") == "$inode" ]] ||
    fail "the conflist was rewritten across an agent restart (the old agent removed the entry?)"

# A host-interface chain on a veth whose peer is in a netns of the test's (10.250.0.2 there,
# 10.250.0.1 here): portfilter (XDP) dropping UDP to one port, then the counter; packages over
# HTTP.
ip netns add "$tns"
ip link add "$veth" type veth peer name "${veth}p" netns "$tns"
ip addr add 10.250.0.1/30 dev "$veth"
ip link set "$veth" up
ip -n "$tns" addr add 10.250.0.2/30 dev "${veth}p"
ip -n "$tns" link set "${veth}p" up
ip -n "$tns" link set lo up
# No ARP while traffic is counted (its answers would cross the chain too, but need not).
ip -n "$tns" neigh replace 10.250.0.1 lladdr "$(cat "/sys/class/net/$veth/address")" dev "${veth}p" nud permanent
port=$(free_port 127.0.0.1)
serve_packages 127.0.0.1 "$port"
sha=$(sha256sum "$root/examples/packages/counter-1.0.0.tar.gz" | cut -d' ' -f1)
pf_sha=$(sha256sum "$root/examples/packages/portfilter-1.0.0.tar.gz" | cut -d' ' -f1)
udp_open=$(free_port)
udp_blocked=$(free_port)
filter_then_count() { # SUFFIX (xdp, tc) PORT: the programs of a chain dropping TCP/UDP to PORT
    echo '[{"name": "filter", "entry": "portfilter_'"$1"'",
       "package": {"url": "http://127.0.0.1:'"$port"'/portfilter-1.0.0.tar.gz", "sha256": "'"$pf_sha"'"},
       "mapArgs": [{"map": "portfilter_ports", "entries": [{"key": "'"$2"'", "value": "1"}]}]},
      {"name": "count", "entry": "counter_'"$1"'",
       "package": {"url": "http://127.0.0.1:'"$port"'/counter-1.0.0.tar.gz", "sha256": "'"$sha"'"}}]'
}
t2=$(now_ms)
kubectl apply -f - <<<'{
  "apiVersion": "bpfchain.io/v1alpha1", "kind": "BpfChain", "metadata": {"name": "count-node"},
  "spec": {"hook": "xdp", "interfaces": {"names": ["'"$veth"'"]},
    "programs": '"$(filter_then_count xdp "$udp_blocked")"'}}' >/dev/null || fail "creating the BpfChain"
wait_for "BpfChain count-node not Ready" chain_ready count-node
t_chain=$(($(now_ms) - t2))
ip -d link show "$veth" | grep -q ' xdp' || fail "no XDP program on $veth"

# helm upgrade to a rebuilt image (same binaries, another tag, so another digest) rolls the
# agent DaemonSet and the operator Deployment. Meanwhile a steady UDP flow from the netns
# crosses the chain: to the open port not one datagram may be lost, to the blocked port not
# one may arrive (the verdict holds while no agent runs); and the new agent adopts the pinned
# chain: the kernel's program IDs (root and both programs, and XDP's on the interface) are the
# ones from before.
hook_ids() { # the XDP program's ID on $veth, then the agent's root and program IDs of its hook
    local st
    st=$("$build/bin/bpfchain-agent" status --socket /run/bpfchain/agent.sock -o json) || return 1
    py '
import json, sys
link = json.loads(sys.argv[2])[0]
hooks = [h for h in json.loads(sys.argv[1])["hooks"] if h["interface"] == sys.argv[3] and h["hook"] == "xdp"]
assert len(hooks) == 1, hooks
print(link["xdp"]["prog"]["id"], hooks[0]["rootProgramId"],
      " ".join("%s=%d" % (p["program"], p["programId"]) for p in hooks[0]["programs"]))' \
        "$st" "$(ip -j -d link show "$veth")" "$veth"
}
ids_before=$(hook_ids) || fail "program IDs on $veth before the upgrade"
[[ $ids_before == *" filter="*" count="* ]] || fail "the agent's hook on $veth: $ids_before"
tag=$("$root/scripts/image.sh" --version)-rebuilt
"$root/scripts/image.sh" --build-dir "$build" --tag "$tag" --output "$build/bpfchain-image-$tag.tar" \
    --import "$CONTAINERD_ADDRESS" >/dev/null 2>&1 || fail "scripts/image.sh --tag $tag --import"
rm -f "$build/bpfchain-image-$tag.tar"
flow=$(mktemp -d "${TMPDIR:-/tmp}/bpfchain-flow.XXXXXX")
python3 "$root/tests/node/udp_flow.py" receive 10.250.0.1 "$flow/received" "$udp_open" "$udp_blocked" &
flow_pids+=($!)
wait_for "UDP receiver not ready" test -e "$flow/received.ready"
ip netns exec "$tns" python3 "$root/tests/node/udp_flow.py" send 10.250.0.1 "$flow/stop" "$flow/sent" \
    "$udp_open" "$udp_blocked" &
flow_pids+=($!)
old_agent=$(agent_pod)
t_up=$(now_ms)
"$helm" upgrade bpfchain "$root/charts/bpfchain" --namespace "$ns" --reuse-values \
    --set image.tag="$tag" >/dev/null || fail "helm upgrade --set image.tag=$tag"
kubectl -n "$ns" rollout status ds/bpfchain-agent --timeout=120s >/dev/null || fail "agent DaemonSet not rolled out after helm upgrade"
kubectl -n "$ns" rollout status deploy/bpfchain-operator --timeout=120s >/dev/null || fail "operator Deployment not rolled out after helm upgrade"
agent_image() {
    api "/api/v1/namespaces/$ns/pods?labelSelector=app.kubernetes.io/name%3Dbpfchain-agent" |
        py 'import json,sys; print(" ".join(c["image"] for p in json.load(sys.stdin)["items"] for c in p["spec"]["containers"]))'
}
upgraded_agent_ready() { [[ $(agent_image) == *":$tag" ]] && new_agent_ready; }
wait_for "no agent pod of image tag $tag Ready after helm upgrade" upgraded_agent_ready
wait_for "the upgraded agent does not serve its status" hook_ids
t_upgrade=$(($(now_ms) - t_up))
sleep 1 # traffic through the chain with the new agent running, too
: >"$flow/stop"
wait "${flow_pids[1]}" || fail "UDP sender failed"
sleep 0.5 # the last datagrams in flight
kill "${flow_pids[0]}"
wait "${flow_pids[0]}" || true
flow_pids=()
[[ -s $flow/sent && -s $flow/received ]] || fail "the UDP flow wrote no counts"
flow_result=$(py '
import json, sys
sent, got = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
o, b = sys.argv[3], sys.argv[4]
print("sent %d to the open port, %d arrived (%d lost); sent %d to the blocked port, %d arrived" % (
    sent[o], got[o], sent[o] - got[o], sent[b], got[b]))
sys.exit(0 if sent[o] == got[o] and sent[o] > 0 and sent[b] > 0 and got[b] == 0 else 1)' \
    "$flow/sent" "$flow/received" "$udp_open" "$udp_blocked") ||
    fail "traffic through the chain during helm upgrade: $flow_result"
rm -rf "$flow"
flow=""
ids_after=$(hook_ids) || fail "program IDs on $veth after the upgrade"
[[ $ids_after == "$ids_before" ]] ||
    fail "programs reloaded by the upgrade: IDs (xdp root filter count) before '$ids_before', after '$ids_after'"
# (The probe uses nc: Debian's static busybox wget crashes with -T.)
# A pods chain: tc-ingress on a pod's host-side veth sees what the pod sends. portfilter drops
# TCP to $blocked, the counter counts the rest.
blocked=$(free_port)
open_port=$(free_port)
for p in "$blocked" "$open_port"; do serve_packages 0.0.0.0 "$p"; done
gw=10.244.0.1 # the bridge's address (local-node.sh: isGateway) is the pods' way to the host
kubectl apply -f - <<<'{
  "apiVersion": "bpfchain.io/v1alpha1", "kind": "BpfChain", "metadata": {"name": "pods-node"},
  "spec": {"hook": "tc-ingress",
    "pods": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
             "podSelector": {"matchLabels": {"app": "bpfchain-probe"}}},
    "programs": '"$(filter_then_count tc "$blocked")"'}}' >/dev/null || fail "creating the pods BpfChain"
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

mem=$(node_rss)

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
wait_for "bpfchain-cni still in the node's conflist after helm uninstall: $(cat "$(conflist)")" entry_gone
t_uninstall=$(($(now_ms) - t_u))
# A new pod still starts: nothing on the node waits for an agent that is gone.
new_pod_runs "helm uninstall"
t3=$(now_ms)
stop_servers
ip link del "$veth"
ip netns del "$tns"
"$node_sh" down --dir "$dir"
t_down=$(($(now_ms) - t3))
trap - EXIT

assert_node_clean
echo "helm install -> agent Ready ${t_agent} ms (agent restarts: ${agent_restarts}); chain create -> Ready ${t_chain} ms; agent restart -> new agent Ready ${t_restart} ms; helm upgrade -> new agent serving ${t_upgrade} ms, ${flow_result}, program IDs kept (${ids_after}); probe pod create -> both ports tried ${t_probe} ms; helm uninstall -> entry removed ${t_uninstall} ms; down ${t_down} ms; whole test $(($(now_ms) - t0)) ms; $mem"
echo PASS
