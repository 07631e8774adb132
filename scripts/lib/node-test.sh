# The node tier's shared test steps (tests/node/*.sh): sourced by a test script after
# `set -euo pipefail`. It brings a real node up (scripts/local-node.sh, owned by the test's pid)
# and gives the checks every node test makes: API calls as admin, waits, the agent's pods and
# its CNI entry, and "nothing left" after down.
#   node_up [local-node.sh up flags]  up under $dir; sources its env (KUBECONFIG, ...); defines
#                                     api PATH [curl args] (admin) and $c (the cluster's certs)
#   wait_for WHAT CMD...              retries CMD for up to 120 s, else fail WHAT
#   fail MESSAGE                      says why, with fail_context's output when the test defines
#                                     it, and the BpfNodeConfig status and agent logs once
#                                     $agent_ns is set; exits 1
#   agent_ns=NS, then agent_pod, all_ready SELECTOR, lease_held, entry_present, entry_gone,
#   chain_ready NAME                  the release's pods, its CNI entry, a BpfChain's status
#   free_port [ADDR], serve_packages ADDR PORT, stop_servers
#                                     examples/packages over HTTP, answering before it returns
#   new_pod_runs AFTER                a pod created now runs (after an uninstall)
#   assert_node_clean                 after down: no dir, netns, mount, process, cgroup, chain
#                                     or bridge of the node's; /sys/fs/bpf not a mount
# Run as root.
export PATH=$PATH:/usr/sbin:/sbin
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
node_sh=$root/scripts/local-node.sh
agent_ns=""

now_ms() { date +%s%3N; }
py() { python3 -c "$1" "${@:2}"; }
fail() {
    echo "FAIL: $*" >&2
    if declare -F fail_context >/dev/null; then fail_context >&2 || true; fi
    if [[ -n $agent_ns ]] && declare -F api >/dev/null; then
        echo "--- BpfNodeConfig status:" >&2
        api "/apis/bpfchain.io/v1alpha1/bpfnodeconfigs/${BPFCHAIN_NODE_NAME:-}" 2>/dev/null |
            py 'import json,sys; print(json.dumps(json.load(sys.stdin).get("status"), indent=1))' >&2 || true
        echo "--- agent log (tail):" >&2
        local p
        for p in $(agent_pod 2>/dev/null); do
            api "/api/v1/namespaces/$agent_ns/pods/$p/log?tailLines=30" >&2 2>/dev/null || true
        done
    fi
    exit 1
}
wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < 600; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "$what"
}

cni_netns() { ls /var/run/netns 2>/dev/null | grep '^cni-' | sort || true; }
cni_before=$(cni_netns)
bpffs_mounted() { awk '$5 == "/sys/fs/bpf" {f=1} END {exit !f}' /proc/self/mountinfo; }
bpffs_before=0
if bpffs_mounted; then bpffs_before=1; fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/bpfchain-node.XXXXXX")
rmdir "$dir"

node_up() {
    local env_file
    env_file=$("$node_sh" up --dir "$dir" --owner-pid $$ "$@") || fail "local-node.sh up $*"
    # shellcheck source=/dev/null
    . "$env_file"
    c=$dir/cluster/certs
}
api() {
    local path=$1
    shift
    curl -fsS --max-time 10 --retry 5 --retry-connrefused --cacert "$c/ca.crt" \
        --cert "$c/admin.crt" --key "$c/admin.key" "$@" "$BPFCHAIN_APISERVER_URL$path"
}
node_rss() { # the kubelet's and containerd's RSS
    local n out=""
    for n in kubelet containerd; do
        out+="${out:+, }$n $(ps -o rss= -p "$(cat "$dir/$n.pid")" | tr -d ' ') KiB"
    done
    echo "$out"
}

# HTTP servers of examples/packages (the chains' packages; the probe pod's targets).
server_pids=()
free_port() { # [ADDR]: a free TCP port on ADDR (0.0.0.0)
    py 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "${1:-0.0.0.0}"
}
serve_packages() { # ADDR PORT: serves examples/packages there, returns once it answers
    python3 -m http.server --bind "$1" "$2" -d "$root/examples/packages" >/dev/null 2>&1 &
    server_pids+=($!)
    wait_for "no HTTP server answers at $1:$2" curl -fsS -o /dev/null --max-time 2 "http://${1/0.0.0.0/127.0.0.1}:$2/"
}
stop_servers() {
    local p
    for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    server_pids=()
}

# The agent (namespace $agent_ns) and its CNI entry.
pods_of() { # LABEL_SELECTOR: names of the pods in $agent_ns
    api "/api/v1/namespaces/$agent_ns/pods?labelSelector=$1" |
        py 'import json,sys; print(" ".join(p["metadata"]["name"] for p in json.load(sys.stdin)["items"]))'
}
agent_pod() { pods_of app.kubernetes.io/name%3Dbpfchain-agent; }
all_ready() { # LABEL_SELECTOR: every pod in $agent_ns Running and Ready, at least one
    api "/api/v1/namespaces/$agent_ns/pods?labelSelector=$1" | py '
import json, sys
items = json.load(sys.stdin)["items"]
ok = items and all(p["status"].get("phase") == "Running" and any(
    c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    for p in items)
sys.exit(0 if ok else 1)'
}
lease_held() { # the operator's Lease has a holder
    api "/apis/coordination.k8s.io/v1/namespaces/$agent_ns/leases/bpfchain-operator" |
        py 'import json,sys; sys.exit(0 if json.load(sys.stdin)["spec"].get("holderIdentity") else 1)'
}
conflist() { ls "$BPFCHAIN_CNI_CONF_DIR"/*.conflist | head -n1; }
entry_present() { # exit 0 when bpfchain-cni is the last plugin after the bridge
    py '
import json, sys
types = [p["type"] for p in json.load(open(sys.argv[1]))["plugins"]]
sys.exit(0 if types[-1] == "bpfchain-cni" and types[0] == "bridge" else "conflist plugins: %s" % types)' \
        "$(conflist)"
}
entry_gone() { ! entry_present && [[ ! -e $BPFCHAIN_CNI_BIN_DIR/bpfchain-cni ]]; }
chain_ready() { # NAME: the BpfChain's status says Ready on its one node
    api "/apis/bpfchain.io/v1alpha1/bpfchains/$1" | py '
import json, sys
s = json.load(sys.stdin).get("status", {})
ok = s.get("ready") == "1/1" and any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in s.get("conditions", []))
sys.exit(0 if ok else 1)'
}
new_pod_runs() { # AFTER: a pod created now reaches Running (nothing waits for a gone agent)
    kubectl apply -f - <<<'{
  "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "after-uninstall"},
  "spec": {"terminationGracePeriodSeconds": 1,
    "containers": [{"name": "c", "image": "bpfchain.local/busybox:1", "imagePullPolicy": "Never",
      "command": ["sleep", "3600"]}]}}' >/dev/null || fail "creating a pod after $1"
    pod_running() {
        api /api/v1/namespaces/default/pods/after-uninstall |
            py 'import json,sys; sys.exit(0 if json.load(sys.stdin)["status"].get("phase") == "Running" else 1)'
    }
    wait_for "a pod created after $1 is not Running" pod_running
}

assert_node_clean() {
    [[ ! -e $dir ]] || fail "$dir still exists"
    local new_netns p t tbl out cg
    new_netns=$(comm -13 <(printf '%s\n' "$cni_before") <(printf '%s\n' "$(cni_netns)"))
    [[ -z $new_netns ]] || fail "sandbox netns left: $new_netns"
    ! grep -qF "$dir" /proc/self/mountinfo || fail "mounts under $dir remain"
    ((bpffs_before)) || ! bpffs_mounted || fail "/sys/fs/bpf is still a mount"
    for p in /proc/[0-9]*; do
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$dir"; then
            fail "process ${p#/proc/} still runs: $(tr '\0' ' ' <"$p/cmdline")"
        fi
    done
    for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
        [[ ! -d $cg ]] || fail "cgroup $cg remains"
    done
    for t in iptables ip6tables; do
        for tbl in filter nat mangle; do
            out=$("$t-save" -t "$tbl" 2>/dev/null || true)
            [[ $out != *KUBE-* && $out != *BPFCHAIN-NODE-* ]] || fail "$t $tbl still has KUBE- or BPFCHAIN-NODE- chains"
        done
    done
    ! ip link show bpfnode0 >/dev/null 2>&1 || fail "bridge bpfnode0 remains"
}
