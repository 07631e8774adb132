#!/usr/bin/env bash
# A real Kubernetes node on this machine (DESIGN.md section 8; the shared real_node.md): the
# control plane of local-cluster.sh started in its --node mode, plus kube-controller-manager,
# kube-scheduler, a private containerd (Debian's, with runc), a kubelet and a bridge +
# host-local primary CNI, with a locally built pause image and a busybox image. No registry.
#
# Usage (as root):
#   scripts/local-node.sh up [--dir DIR] [--owner-pid PID] [--name NODE] [--shared-bpffs]
#                            [--host-cni-dirs]
#       Starts everything under DIR (default: a new mktemp -d ${TMPDIR:-/tmp}/bpfchain-node.XXXXXX)
#       and waits for the Node NODE (default: bpfchain-node) to be Ready. Prints ONE line: the
#       path of DIR/env (shell exports: KUBECONFIG (admin), BPFCHAIN_APISERVER_URL,
#       BPFCHAIN_NODE_NAME, BPFCHAIN_NODE_IP, CONTAINERD_ADDRESS, BPFCHAIN_CNI_CONF_DIR/BIN_DIR,
#       BPFCHAIN_NODE_DIR). Images bpfchain.local/pause:1 and bpfchain.local/busybox:1 are in
#       the node's containerd (namespace k8s.io). With --owner-pid, a watchdog runs `down`
#       within ~1 s of PID's death. On failure: logs' tails on stderr, everything torn down.
#       --shared-bpffs: bind /sys/fs/bpf onto itself as a shared mount, for pods with a
#       Bidirectional /sys/fs/bpf volume (the bpfchain agent); refused if it is a mount already.
#       --host-cni-dirs: the node's CNI configuration in /etc/cni/net.d and its plugins in
#       /opt/cni/bin (the defaults of manifests/ and the chart) instead of under DIR; refused
#       when either holds a file. down removes what up put there, and the directories it made.
#   scripts/local-node.sh down [--dir DIR]
#       Deletes every pod (force), waits for the kubelet to stop them, stops kubelet,
#       kube-scheduler, kube-controller-manager and containerd, kills leftover shims and
#       container processes, removes what the node wrote outside DIR (kubepods cgroups, KUBE-*
#       iptables/ip6tables chains, its BPFCHAIN-NODE-SVC chain, the bridge, cni-* netns, mounts
#       under DIR, /var/lib/kubelet,
#       /var/lib/cni, /run/containerd and /var/log/containers when `up` created them, and with
#       --host-cni-dirs its conflist and plugin links), stops the control plane and removes DIR. Without --dir: the node recorded by the last owner-less up.
#   scripts/local-node.sh down --all-stale
#       `down` for every ${TMPDIR:-/tmp}/bpfchain-node.* whose owner is dead, whose kubelet and
#       containerd are both dead, or whose `up` was killed before it finished. Prints each dir.
#
# The kubelet authenticates with a node client certificate (CN=system:node:NODE,
# O=system:nodes), so the API server's Node authorizer and NodeRestriction admission apply to
# it; kube-controller-manager and kube-scheduler use the admin kubeconfig. Fixed kubelet ports
# (10250, 10248), /run/containerd (runc and shim sockets) and the kubepods cgroups make this
# one node per machine: `up` refuses when port 10250 is taken. Two nodes: two machines (or VMs),
# each running `up`... see docs/testing.md.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

self=$(readlink -f "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$self")/.." && pwd)
tmpbase=${TMPDIR:-/tmp}
tmpbase=${tmpbase%/}
last_file="$tmpbase/bpfchain-node.last"
marker=.bpfchain-node
bridge=bpfnode0
svc_chain=BPFCHAIN-NODE-SVC
pod_subnet=10.244.0.0/24
start_timeout=${BPFCHAIN_NODE_START_TIMEOUT:-120}

log() { printf 'local-node: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2; }
# shellcheck source=scripts/lib/processes.sh
source "$(dirname "$self")/lib/processes.sh"

# api DIR PATH: GET PATH from the API server as admin.
api() {
    local dir=$1 c=$1/cluster/certs url
    url=$(. "$dir/cluster/env" && printf '%s' "$BPFCHAIN_APISERVER_URL")
    curl -fsS --max-time 5 --cacert "$c/ca.crt" --cert "$c/admin.crt" --key "$c/admin.key" \
        "${@:3}" "$url$2"
}

node_ready() { # DIR NODE
    api "$1" "/api/v1/nodes/$2" 2>/dev/null | python3 -c '
import json, sys
n = json.load(sys.stdin)
ok = any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
sys.exit(0 if ok else 1)' 2>/dev/null
}

# --- images --------------------------------------------------------------------------------------

# pack_image WORK NAME ROOTFS_FILLER ENTRYPOINT: an OCI archive WORK/NAME.tar of one layer.
pack_image() {
    local work=$1 name=$2 fill=$3 entry=$4 l=$2-oci
    (
        cd "$work"
        umoci init --layout "$l"
        umoci new --image "$l:1"
        umoci unpack --image "$l:1" "$name-bundle" >/dev/null
        "$fill" "$name-bundle/rootfs"
        umoci repack --image "$l:1" "$name-bundle" >/dev/null
        umoci config --image "$l:1" --config.entrypoint "$entry" >/dev/null
        umoci gc --layout "$l"
        tar -C "$l" -cf "$name.tar" .
        rm -rf "$l" "$name-bundle"
    )
}

fill_pause() { install -m 755 "$images/pause" "$1/pause"; }
fill_busybox() {
    local a
    mkdir -p "$1/bin" "$1/tmp"
    install -m 755 /bin/busybox "$1/bin/busybox"
    for a in sh sleep cat echo ls nc wget ip ping true false env; do ln -sf busybox "$1/bin/$a"; done
}

build_images() { # DIR
    images=$1/images
    mkdir -p "$images"
    cat >"$images/pause.c" <<'EOF'
/* The pod sandbox's PID 1: waits, reaps children, exits 0 on SIGINT/SIGTERM. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
EOF
    gcc -Os -static -o "$images/pause" "$images/pause.c" || return 1
    pack_image "$images" pause fill_pause /pause || return 1
    pack_image "$images" busybox fill_busybox /bin/sh || return 1
}

# --- up ------------------------------------------------------------------------------------------


cmd_up() {
    local dir="" owner="" owner_start="" node=bpfchain-node t0 c shared_bpffs=0 host_cni=0
    while (($#)); do
        case "$1" in
            --dir) dir=${2:?--dir needs a value}; shift ;;
            --owner-pid) owner=${2:?--owner-pid needs a value}; shift ;;
            --name) node=${2:?--name needs a value}; shift ;;
            --shared-bpffs) shared_bpffs=1 ;;
            --host-cni-dirs) host_cni=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage; die "up: unknown argument: $1" ;;
        esac
        shift
    done
    [[ $(id -u) -eq 0 ]] || die "run as root"
    for c in containerd runc ctr umoci gcc iptables ip curl python3 openssl setsid flock; do
        command -v "$c" >/dev/null 2>&1 || die "$c is required (scripts/deps.sh --node installs it)"
    done
    [[ -x /bin/busybox ]] || die "/bin/busybox is required (apt-get install busybox-static)"
    [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] ||
        die "/usr/lib/cni/{bridge,host-local} are required (apt-get install containernetworking-plugins)"
    if [[ -n "$owner" ]]; then
        owner_start=$(proc_start "$owner") || die "--owner-pid $owner: no such live process"
    fi
    if ss -Hltn 'sport = :10250' | grep -q .; then
        die "port 10250 is taken: a kubelet already runs on this machine (one node per machine)"
    fi
    local nbin
    nbin=$("$root/tools/envtest/build-node.sh") || die "tools/envtest/build-node.sh failed"
    t0=$(now_ms)

    umask 022
    if [[ -z "$dir" ]]; then
        mkdir -p "$tmpbase"
        dir=$(mktemp -d "$tmpbase/bpfchain-node.XXXXXX")
    else
        dir=$(readlink -m "$dir")
        [[ ! -e "$dir" || -z "$(ls -A "$dir" 2>/dev/null)" ]] || die "--dir $dir is not empty"
        mkdir -p "$dir"
    fi
    chmod 755 "$dir"
    claim_dir "$dir" "$owner" "$owner_start"
    # What existed before, so that down removes only what this node created.
    # (/var/lib/bpfchain and /run/bpfchain: the chart's hostPath volumes.)
    for c in /var/lib/kubelet /var/lib/cni /run/containerd /var/log/containers /var/log/pods \
        /var/lib/bpfchain /run/bpfchain /etc/cni /etc/cni/net.d /opt/cni /opt/cni/bin; do
        [[ -e $c ]] || printf '%s\n' "$c" >>"$dir/created-paths"
    done
    local cni_conf=$dir/cni/net.d cni_bin=$dir/cni/bin
    if ((host_cni)); then
        cni_conf=/etc/cni/net.d
        cni_bin=/opt/cni/bin
        for c in "$cni_conf" "$cni_bin"; do
            [[ -z "$(ls -A "$c" 2>/dev/null)" ]] || die "--host-cni-dirs: $c is not empty; not touching it"
        done
        : >"$dir/host-cni-dirs"
    fi
    if ((shared_bpffs)); then
        # A Bidirectional volume of /sys/fs/bpf (the agent DaemonSet's) needs a shared mount
        # there; this machine's /sys is private. A bind of /sys/fs/bpf onto itself, made shared;
        # down unmounts it and whatever a pod mounted on it (the agent's bpffs).
        if awk '$5 == "/sys/fs/bpf" {f=1} END {exit !f}' /proc/self/mountinfo; then
            die "--shared-bpffs: /sys/fs/bpf is already a mount point; not touching it"
        fi
        mount --bind /sys/fs/bpf /sys/fs/bpf && mount --make-shared /sys/fs/bpf ||
            die "--shared-bpffs: cannot make /sys/fs/bpf a shared mount"
        : >"$dir/shared-bpffs"
    fi

    "$root/scripts/local-cluster.sh" up --node --dir "$dir/cluster" >/dev/null ||
        die "local-cluster.sh up --node failed"
    local cc=$dir/cluster/certs url node_ip
    url=$(. "$dir/cluster/env" && printf '%s' "$BPFCHAIN_APISERVER_URL")
    node_ip=$(ip -4 -o route get 192.0.2.255 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
    [[ -n "$node_ip" ]] ||
        node_ip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
    [[ -n "$node_ip" ]] || die "no global IPv4 address for --node-ip"
    log "control plane ready at $url ($(($(now_ms) - t0)) ms); node IP $node_ip"
    # The kubernetes Service without kube-proxy: 10.0.0.1:443 (what the kubelet gives pods as
    # KUBERNETES_SERVICE_HOST/PORT) goes to the API server, from pods on the bridge
    # (PREROUTING) and on the host network (OUTPUT).
    iptables -t nat -N "$svc_chain"
    iptables -t nat -A "$svc_chain" -p tcp -j DNAT --to-destination "$node_ip:${url##*:}"
    for c in PREROUTING OUTPUT; do
        iptables -t nat -A "$c" -d 10.0.0.1/32 -p tcp --dport 443 -j "$svc_chain"
    done

    # The kubelet's client certificate: the Node authorizer's identity for NODE.
    local p=$dir/kubelet/pki
    mkdir -p "$p"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$p/node.key" \
        -out "$p/node.csr" -subj "/CN=system:node:$node/O=system:nodes" 2>/dev/null
    openssl x509 -req -in "$p/node.csr" -CA "$cc/client-ca.crt" -CAkey "$cc/client-ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 7 -extfile <(
            printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
        ) -out "$p/node.crt" 2>/dev/null || die "node certificate"
    cat >"$dir/kubelet/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$url", certificate-authority: "$cc/ca.crt"}
users:
- name: node
  user: {client-certificate: "$p/node.crt", client-key: "$p/node.key"}
contexts:
- name: local
  context: {cluster: local, user: node}
current-context: local
EOF

    build_images "$dir" || die "building the pause and busybox images failed"

    # containerd
    local cd=$dir/containerd
    mkdir -p "$cd" "$cni_conf" "$dir/cni/ipam" "$cni_bin" "$dir/pod-logs"
    # The node's CNI binary directory is its own (a chained plugin installs itself there):
    # Debian's plugins by symlink.
    for c in /usr/lib/cni/*; do ln -s "$c" "$cni_bin/"; done
    cat >"$cd/config.toml" <<EOF
version = 2
root = "$cd/root"
state = "$cd/state"
[grpc]
  address = "$cd/containerd.sock"
[ttrpc]
  address = "$cd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "bpfchain.local/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$cni_conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
EOF
    cat >"$cni_conf/10-bpfchain-node.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "bpfchain-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam",
               "ranges": [[{"subnet": "$pod_subnet"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    }
  ]
}
EOF
    spawn "$dir" containerd containerd --config "$cd/config.toml"
    local i
    for ((i = 0; i < 100; i++)); do
        ctr --address "$cd/containerd.sock" version >/dev/null 2>&1 && break
        ours "$(read_pid "$dir/containerd.pid")" "$dir" || { tail_log "$dir/containerd.log"; die "containerd exited"; }
        sleep 0.1
    done
    ctr --address "$cd/containerd.sock" version >/dev/null 2>&1 || { tail_log "$dir/containerd.log"; die "containerd not ready"; }
    for c in pause busybox; do
        ctr --address "$cd/containerd.sock" -n k8s.io images import --base-name "bpfchain.local/$c" \
            --digests "$dir/images/$c.tar" >/dev/null || die "importing $c"
        ctr --address "$cd/containerd.sock" -n k8s.io images tag --force "bpfchain.local/$c:1" "bpfchain.local/$c:1" >/dev/null 2>&1 || true
    done
    log "containerd ready, images imported ($(($(now_ms) - t0)) ms)"

    local admin=$dir/cluster/kubeconfig
    spawn "$dir" kube-controller-manager "$nbin/kube-controller-manager" \
        --kubeconfig="$admin" --leader-elect=false --secure-port=0 \
        --service-account-private-key-file="$cc/sa.key" --root-ca-file="$cc/ca.crt" \
        --use-service-account-credentials=false --controllers='*' \
        --cert-dir="$dir/kcm-certs"
    spawn "$dir" kube-scheduler "$nbin/kube-scheduler" \
        --kubeconfig="$admin" --leader-elect=false --secure-port=0 --cert-dir="$dir/scheduler-certs"

    cat >"$dir/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$cd/containerd.sock
podLogsDir: $dir/pod-logs
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
    local tk
    tk=$(now_ms)
    spawn "$dir" kubelet "$nbin/kubelet" --config="$dir/kubelet/config.yaml" \
        --kubeconfig="$dir/kubelet/kubeconfig" --root-dir="$dir/kubelet/root" \
        --cert-dir="$dir/kubelet/pki" --hostname-override="$node" --node-ip="$node_ip"
    local deadline=$(($(date +%s) + start_timeout))
    until node_ready "$dir" "$node"; do
        for c in kubelet containerd kube-controller-manager kube-scheduler; do
            ours "$(read_pid "$dir/$c.pid")" "$dir" || { tail_log "$dir/$c.log"; die "$c exited"; }
        done
        (($(date +%s) < deadline)) || { tail_log "$dir/kubelet.log"; die "node $node not Ready after $start_timeout s"; }
        sleep 0.2
    done
    {
        printf 'export KUBECONFIG=%q\n' "$admin"
        printf 'export BPFCHAIN_APISERVER_URL=%q\n' "$url"
        printf 'export BPFCHAIN_NODE_NAME=%q\n' "$node"
        printf 'export BPFCHAIN_NODE_IP=%q\n' "$node_ip"
        printf 'export CONTAINERD_ADDRESS=%q\n' "$cd/containerd.sock"
        printf 'export BPFCHAIN_CNI_CONF_DIR=%q\n' "$cni_conf"
        printf 'export BPFCHAIN_CNI_BIN_DIR=%q\n' "$cni_bin"
        printf 'export BPFCHAIN_NODE_DIR=%q\n' "$dir"
    } >"$dir/env"
    up_ok=1
    log "node $node Ready: kubelet start -> Ready $(($(now_ms) - tk)) ms, up total $(($(now_ms) - t0)) ms (dir $dir)"
    printf '%s\n' "$dir/env"
}

# --- down ----------------------------------------------------------------------------------------

created() { grep -qxF "$2" "$1/created-paths" 2>/dev/null; }

# kill_cgroup_tree: SIGKILL every process in the kubepods cgroups (all v1 controllers and v2),
# then remove them deepest first.
clean_kubepods() {
    local base d pid i
    for base in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/unified/kubepods; do
        [[ -d $base ]] || continue
        for ((i = 0; i < 20; i++)); do
            local any=0
            while IFS= read -r pid; do
                [[ -n $pid ]] || continue
                any=1
                kill -KILL "$pid" 2>/dev/null || true
            done < <(find "$base" -name cgroup.procs -exec cat {} + 2>/dev/null)
            ((any)) || break
            sleep 0.1
        done
        find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [[ ! -d $base ]] || log "warning: $base could not be removed"
    done
}

clean_iptables() {
    local t tbl chain rule
    for t in iptables ip6tables; do
        command -v "$t" >/dev/null || continue
        for tbl in filter nat mangle; do
            # Rules that jump to a KUBE- chain (or ours), then the chains themselves.
            { "$t-save" -t "$tbl" 2>/dev/null | grep -E '^-A [^ ]+ .*-j (KUBE-|BPFCHAIN-NODE-)' || true; } | while IFS= read -r rule; do
                # shellcheck disable=SC2086
                eval "\"\$t\" -t \"\$tbl\" -D ${rule#-A }" 2>/dev/null || true
            done
            for chain in $("$t-save" -t "$tbl" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|BPFCHAIN-NODE-[^ ]*\) .*/\1/p'); do
                "$t" -t "$tbl" -F "$chain" 2>/dev/null || true
            done
            for chain in $("$t-save" -t "$tbl" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|BPFCHAIN-NODE-[^ ]*\) .*/\1/p'); do
                "$t" -t "$tbl" -X "$chain" 2>/dev/null || true
            done
        done
    done
}

do_down() { # DIR
    local dir=$1 pid sock i m
    if [[ ! -e "$dir" ]]; then
        log "$dir: already gone"
        return 0
    fi
    [[ -f "$dir/$marker" ]] || die "$dir is not a local-node dir (no $marker); not removing it"
    if pid=$(read_pid "$dir/watchdog.pid") && [[ "$pid" != "$$" ]] && ours "$pid" "$dir"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
    local t0
    t0=$(now_ms)
    sock=$dir/containerd/containerd.sock
    # The controllers first, so that no ReplicaSet or DaemonSet makes a pod anew; then the pods,
    # while kubelet and containerd run: the kubelet stops them through the CRI, which runs CNI
    # DEL and removes each sandbox's netns.
    stop_proc "$dir" kube-controller-manager
    stop_proc "$dir" kube-scheduler
    if pid=$(read_pid "$dir/kubelet.pid") && ours "$pid" "$dir" && [[ -f $dir/cluster/env ]]; then
        local ns
        for ns in $(api "$dir" /api/v1/pods 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    print(p["metadata"]["namespace"] + "/" + p["metadata"]["name"])' 2>/dev/null); do
            api "$dir" "/api/v1/namespaces/${ns%%/*}/pods/${ns#*/}?gracePeriodSeconds=0" -X DELETE >/dev/null 2>&1 || true
        done
        for ((i = 0; i < 300; i++)); do
            [[ -z "$(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null)" ]] && break
            sleep 0.1
        done
    fi
    stop_proc "$dir" kubelet
    # Tasks the kubelet did not stop: kill and delete them through containerd.
    if [[ -S $sock ]]; then
        local id
        for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
            ctr --address "$sock" -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1 || true
        done
        sleep 0.2
        for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
            ctr --address "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
        done
    fi
    stop_proc "$dir" containerd
    # Shims name our socket on their command lines.
    for pid in $(pgrep -f containerd-shim 2>/dev/null); do
        ours "$pid" "$dir" && kill -KILL "$pid" 2>/dev/null || true
    done
    clean_kubepods
    # Mounts under DIR (kubelet root bind mount, overlay rootfs, sandbox shm), deepest first.
    for ((i = 0; i < 3; i++)); do
        for m in $(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
    done
    # Sandboxes' netns that CNI DEL did not remove (recorded in the sandboxes' state).
    local n
    for n in /var/run/netns/cni-*; do
        [[ -e $n ]] || continue
        grep -qsaF "$n" "$dir/containerd/root/io.containerd.metadata.v1.bolt/meta.db" 2>/dev/null || continue
        umount "$n" 2>/dev/null || true
        rm -f "$n"
    done
    ip link del "$bridge" 2>/dev/null || true
    if [[ -f $dir/shared-bpffs ]]; then
        for ((i = 0; i < 5; i++)); do
            awk '$5 == "/sys/fs/bpf" {f=1} END {exit !f}' /proc/self/mountinfo || break
            umount /sys/fs/bpf 2>/dev/null || umount -l /sys/fs/bpf 2>/dev/null || true
        done
    fi
    # Only this node's veths are on the bridge; they go with it or with their netns.
    clean_iptables
    rm -f /var/lib/cni/results/bpfchain-node-* 2>/dev/null || true
    if [[ -f $dir/host-cni-dirs ]]; then
        # Only what up wrote: its conflist and the symlinks to Debian's plugins.
        rm -f /etc/cni/net.d/10-bpfchain-node.conflist
        find /opt/cni/bin -maxdepth 1 -type l -lname '/usr/lib/cni/*' -delete 2>/dev/null || true
        for m in /etc/cni/net.d /etc/cni /opt/cni/bin /opt/cni; do
            if created "$dir" "$m"; then rmdir "$m" 2>/dev/null || log "warning: $m is not empty"; fi
        done
    fi
    for m in /var/lib/kubelet /var/lib/cni /run/containerd /var/log/pods /var/lib/bpfchain /run/bpfchain; do
        if created "$dir" "$m"; then rm -rf -- "$m"; fi
    done
    if [[ -d /var/log/containers ]]; then
        find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete 2>/dev/null || true
        if created "$dir" /var/log/containers; then rmdir /var/log/containers 2>/dev/null || true; fi
    fi
    if [[ -d $dir/cluster ]]; then
        "$root/scripts/local-cluster.sh" down --dir "$dir/cluster" 2>/dev/null || true
    fi
    rm -rf -- "$dir" 2>/dev/null || rm -rf -- "$dir"
    if [[ -f "$last_file" && "$(cat "$last_file" 2>/dev/null)" == "$dir" ]]; then rm -f "$last_file"; fi
    log "node down in $(($(now_ms) - t0)) ms; removed $dir"
}

# DIR: 0 if the node in DIR should be swept (env: written when up finished).
stale() { dir_stale "$1" env kubelet containerd; }

cmd_down() { cmd_down_of bpfchain-node "node(s)" "$@"; }

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    __exec) shift; cmd_exec "$@" ;;
    __watchdog) shift; cmd_watchdog "$@" ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
esac
