#!/usr/bin/env bash
# The `node` tier (DESIGN.md section 8): a real node (scripts/local-node.sh) comes up Ready, runs
# a busybox pod from a locally packed image to Running, the pod answers on its IP from the host,
# and `down` leaves nothing behind: no process, mount, kubepods cgroup, KUBE- chain, bridge,
# cni- netns or path the node created. Prints the measured times. Run as root.
set -euo pipefail
# shellcheck source=scripts/lib/node-test.sh
. "$(dirname "$0")/../../scripts/lib/node-test.sh"
trap '"$node_sh" down --dir "$dir" >/dev/null 2>&1 || true' EXIT

t0=$(now_ms)
node_up
t_up=$(($(now_ms) - t0))
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$@"; }

[[ "$(api "/api/v1/nodes/$BPFCHAIN_NODE_NAME" | field metadata name)" == "$BPFCHAIN_NODE_NAME" ]] ||
    fail "node $BPFCHAIN_NODE_NAME not registered"

t1=$(now_ms)
api /api/v1/namespaces/default/pods -X POST -H 'Content-Type: application/json' -d '{
  "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "busybox"},
  "spec": {"terminationGracePeriodSeconds": 1,
    "containers": [{"name": "busybox", "image": "bpfchain.local/busybox:1",
      "imagePullPolicy": "Never", "command": ["nc", "-ll", "-p", "8080", "-e", "echo", "hello"]}]}}' \
    >/dev/null || fail "creating the pod"
phase=""
for ((i = 0; i < 600; i++)); do
    pod=$(api /api/v1/namespaces/default/pods/busybox)
    phase=$(field status phase <<<"$pod")
    [[ $phase == Running || $phase == Failed ]] && break
    sleep 0.2
done
t_pod=$(($(now_ms) - t1))
[[ $phase == Running ]] || fail "pod phase '$phase' (not Running): $pod"
ip=$(field status podIP <<<"$pod")
[[ $ip == 10.244.0.* ]] || fail "pod IP '$ip' is not from the bridge's host-local range"
# The container really runs on the pod network: its server answers through the bridge.
reply=""
for ((i = 0; i < 50; i++)); do
    reply=$(busybox nc -w 2 "$ip" 8080 </dev/null 2>/dev/null || true)
    [[ $reply == hello ]] && break
    sleep 0.1
done
[[ $reply == hello ]] || fail "no answer from the pod at $ip:8080 (got '$reply')"
# A pod off the host network reaches the API server as the kubernetes Service (10.0.0.1:443,
# the address the kubelet gives it in KUBERNETES_SERVICE_HOST), as the operator does.
api /api/v1/namespaces/default/pods -X POST -H 'Content-Type: application/json' -d '{
  "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-probe"},
  "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
    "containers": [{"name": "probe", "image": "bpfchain.local/busybox:1", "imagePullPolicy": "Never",
      "command": ["sh", "-c", "printf \"GET /healthz HTTP/1.0\\r\\n\\r\\n\" | nc -w 5 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT"]}]}}' \
    >/dev/null || fail "creating the api-probe pod"
for ((i = 0; i < 600; i++)); do
    phase=$(api /api/v1/namespaces/default/pods/api-probe | field status phase)
    [[ $phase == Succeeded || $phase == Failed ]] && break
    sleep 0.2
done
logs=$(api "/api/v1/namespaces/default/pods/api-probe/log" || true)
# (busybox has no working TLS client: plain HTTP to the TLS port gets Go's TLS server's answer.)
[[ $logs == *"Client sent an HTTP request to an HTTPS server"* ]] ||
    fail "api-probe pod: phase '$phase', output '$logs' (want kube-apiserver's answer)"

mem=$(node_rss)

t2=$(now_ms)
"$node_sh" down --dir "$dir"
t_down=$(($(now_ms) - t2))
trap - EXIT

assert_node_clean
echo "node up (control plane + node Ready) ${t_up} ms; pod create -> Running ${t_pod} ms; down ${t_down} ms; $mem"
echo PASS
