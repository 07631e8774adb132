#!/usr/bin/env bash
# The README's main command: bpfchain on a local control plane with three simulated nodes.
#
#   sudo scripts/demo.sh            run it, print what happened, clean up (about a minute)
#   sudo scripts/demo.sh --keep     the same, then keep everything running until Ctrl-C
#
# What it does, in order:
#   1. installs what is missing (scripts/deps.sh) and builds bpfchain-operator and
#      bpfchain-agent into build/ (BUILD_DIR overrides);
#   2. starts a real kube-apiserver + etcd on loopback (scripts/local-cluster.sh), installs the
#      CRDs (crds/) and the bpfchain-system namespace (manifests/00-namespace.yaml);
#   3. serves the example packages (examples/packages/) on http://127.0.0.1:8607/;
#   4. starts bpfchain-operator (metrics on 127.0.0.1:9451);
#   5. simulates three nodes: a Node object each (node-1 and node-2 role=edge, node-3
#      role=core) and a network namespace each whose eth0 is wired to a router namespace
#      (10.88.<i>.1 on the router, 10.88.<i>.2 on the node), and one bpfchain-agent per node in
#      cluster mode that manages that namespace (--netns; metrics on 127.0.0.1:945<i+1>), pinning
#      under /sys/fs/bpf/bpfchain-demo/<node> (where no bpffs is mounted at /sys/fs/bpf, the
#      first agent mounts one there, as on a real node);
#   6. kubectl applies examples/counter.yaml (every node) and examples/edge-protect.yaml
#      (role=edge: port filter, rate limit, counter) and watches them roll out;
#   7. sends UDP from the router to every node: paced to an open port, to the filtered port
#      9999, and a flood above the rate limit; prints what arrived, kubectl's view, metrics,
#      node-1's `bpfchain-agent status` and `kubectl bpfchain status`;
#   8. on exit (also Ctrl-C or an error) stops and removes everything it started: agents
#      (which detach their chains), operator, HTTP server, namespaces, bpffs pins, control plane,
#      and the bpffs at /sys/fs/bpf if an agent of this demo mounted it.
#      A run killed with SIGKILL is cleaned up by the next run (and its control plane by
#      local-cluster.sh's watchdog at once).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

build=${BUILD_DIR:-build}
keep=0
for arg in "$@"; do
  case $arg in
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

nodes=(node-1 node-2 node-3)
declare -A role=([node-1]=edge [node-2]=edge [node-3]=core)
router=bpfchain-demo-router
bpffs=/sys/fs/bpf/bpfchain-demo
is_bpffs() { [[ $(stat -f -c %T "$1" 2>/dev/null) == bpf_fs ]]; }
statedir=/run/bpfchain-demo # pids of what a run started, for the next run if this one is killed
http_port=8607
operator_port=9451
agent_port() { echo $((9451 + $1)); } # node-1 -> 9452 ... (9451 is the operator's)
netns_of() { echo "bpfchain-demo-$1"; }

t0=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - t0) / 1000000)); printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '  %s\n' "$*"; }
die() { printf '\ndemo.sh: error: %s\n' "$*" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: run as root (BPF, network namespaces): sudo scripts/demo.sh" >&2
  exit 1
fi

# One demo at a time: the names, ports and pins below are fixed.
mkdir -p "$statedir"
exec 9>"$statedir/lock"
flock -n 9 || die "another scripts/demo.sh is running (lock $statedir/lock)"

# proc_start PID: the process's start time (to tell a pid from a reused one).
proc_start() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -ra fields <<<"${stat##*) }"
  printf '%s\n' "${fields[19]}"
}

# Stops the processes recorded in $statedir/pids (agents first: they detach their chains),
# SIGTERM then SIGKILL after 10 s.
stop_recorded() {
  local name pid start live=() i
  [[ -f $statedir/pids ]] || return 0
  while read -r name pid start; do
    [[ $(proc_start "$pid" 2>/dev/null) == "$start" ]] || continue
    kill -TERM "$pid" 2>/dev/null && live+=("$pid")
    # Agents one by one, so each detaches while the others still run (and the log stays readable).
    if [[ $name == agent-* ]]; then
      for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done < <(tac "$statedir/pids")
  for ((i = 0; i < 100; i++)); do
    local any=0 p
    for p in "${live[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
    ((any)) || break
    sleep 0.1
  done
  for p in "${live[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$statedir/pids"
}

remove_everything() {
  stop_recorded
  local n
  for n in "${nodes[@]}"; do ip netns delete "$(netns_of "$n")" 2>/dev/null || true; done
  ip netns delete "$router" 2>/dev/null || true
  rm -rf "$bpffs"
  # The agents mounted a bpffs at /sys/fs/bpf because none was there: unmount it, unless
  # something else has pinned there since.
  if [[ -f $statedir/bpffs-mounted ]]; then
    # (maps.debug and progs.debug are the kernel's own, in every new bpffs.)
    if is_bpffs /sys/fs/bpf && [[ -z $(ls -A /sys/fs/bpf | grep -vx -e maps.debug -e progs.debug) ]]; then
      umount /sys/fs/bpf && info "unmounted the bpffs the agents mounted at /sys/fs/bpf"
    fi
    rm -f "$statedir/bpffs-mounted"
  fi
  if [[ -f $statedir/cluster ]]; then
    scripts/local-cluster.sh down --dir "$(cat "$statedir/cluster")" 2>/dev/null || true
    rm -f "$statedir/cluster"
  fi
  if [[ -f $statedir/work ]]; then
    rm -rf "$(cat "$statedir/work")"
    rm -f "$statedir/work"
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "cleaning up: agents (detaching their chains), operator, HTTP server, namespaces, pins, control plane"
  remove_everything
  rm -f "$statedir/lock"
  rmdir "$statedir" 2>/dev/null || true
  info "done ($(elapsed) in all)"
  exit "$rc"
}

# Whatever a killed run left.
if [[ -f $statedir/pids || -f $statedir/cluster || -f $statedir/work || -f $statedir/bpffs-mounted ]] ||
  ip netns list | grep -q '^bpfchain-demo-' || [[ -e $bpffs ]]; then
  echo "demo.sh: removing what an earlier run left behind" >&2
  remove_everything
fi
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

work=$(mktemp -d /tmp/bpfchain-demo.XXXXXX)
echo "$work" >"$statedir/work"

# spawn NAME CMD...: runs CMD in its own session (so Ctrl-C reaches only this script, which
# then stops everything in order), output in $work/NAME.log.
spawn() {
  local name=$1 pid
  shift
  setsid "$@" </dev/null >"$work/$name.log" 2>&1 9>&- &
  pid=$!
  echo "$name $pid $(proc_start "$pid")" >>"$statedir/pids"
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds; on timeout, die naming WHAT.
wait_for() {
  local what=$1 seconds=$2 deadline
  shift 2
  deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || die "$what: not ready after ${seconds} s"
    sleep 0.2
  done
}

port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

show_log_tail() { # NAME
  printf '\n---- last lines of %s ----\n' "$work/$1.log" >&2
  tail -n 25 "$work/$1.log" >&2 || true
}

# ------------------------------------------------------------------------------------------
say "installing what is missing and building into $build/"
scripts/deps.sh
[[ -f $build/build.ninja ]] || cmake -S . -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target bpfchain-operator bpfchain-agent kubectl-bpfchain >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log" >&2; die "build failed (log above)"; }
bin=$root/$build/bin
[[ -d $bin ]] || bin=$build/bin # an absolute BUILD_DIR
info "$bin/bpfchain-operator, $bin/bpfchain-agent ($(elapsed))"
for p in $http_port $operator_port $(agent_port 1) $(agent_port 2) $(agent_port 3); do
  port_free "$p" || die "port 127.0.0.1:$p is in use; the demo needs 8607 and 9451-9454"
done

# ------------------------------------------------------------------------------------------
say "starting a local control plane: a real kube-apiserver + etcd on loopback"
kubeconfig=$(scripts/local-cluster.sh up --owner-pid $$ 2>"$work/local-cluster.log" 9>&-) ||
  { cat "$work/local-cluster.log" >&2; die "scripts/local-cluster.sh up failed"; }
dirname "$kubeconfig" >"$statedir/cluster"
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }
k apply -f crds/ >/dev/null
k wait --for condition=established --timeout=60s \
  crd/bpfchains.bpfchain.io crd/bpfnodeconfigs.bpfchain.io >/dev/null
k apply -f manifests/00-namespace.yaml >/dev/null
info "kubeconfig $kubeconfig; CRDs bpfchains, bpfnodeconfigs and namespace bpfchain-system installed ($(elapsed))"

say "serving the example packages (examples/packages/) on http://127.0.0.1:$http_port/"
spawn http-server python3 -m http.server --bind 127.0.0.1 --directory "$root/examples/packages" "$http_port"
wait_for "the package server" 15 curl -fsS -o /dev/null "http://127.0.0.1:$http_port/counter-1.0.0.tar.gz"
for f in examples/packages/*.tar.gz; do
  info "$(basename "$f")  sha256 $(sha256sum "$f" | cut -c1-16)..."
done

say "starting bpfchain-operator (metrics on 127.0.0.1:$operator_port)"
spawn operator "$bin/bpfchain-operator" --kubeconfig "$kubeconfig" \
  --metrics-address "127.0.0.1:$operator_port"
wait_for "bpfchain-operator" 60 curl -fsS "http://127.0.0.1:$operator_port/readyz" ||
  { show_log_tail operator; exit 1; }
info "ready ($(elapsed))"

# ------------------------------------------------------------------------------------------
say "simulating ${#nodes[@]} nodes: a Node object, a network namespace and a bpfchain-agent each"
if ! is_bpffs /sys/fs/bpf; then
  touch "$statedir/bpffs-mounted"
  info "no bpffs at /sys/fs/bpf: the first agent mounts one (and this demo unmounts it at the end)"
fi
nsexec() { ip netns exec "$@"; }
quiet_ns() { # NS: IPv4 only (no router solicitations, MLD or DAD), loopback up
  nsexec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$1" link set lo up
}
ip netns add "$router"
quiet_ns "$router"
nsexec "$router" sysctl -qw net.ipv4.ip_forward=1
i=0
for n in "${nodes[@]}"; do
  i=$((i + 1))
  ns=$(netns_of "$n")
  ip netns add "$ns"
  quiet_ns "$ns"
  rmac=02:88:00:00:0$i:01 nmac=02:88:00:00:0$i:02
  # Made in the router namespace and moved at once: the pair never touches the host's.
  ip -n "$router" link add "node$i" address "$rmac" type veth peer name eth0 address "$nmac" netns "$ns"
  ip -n "$router" addr add "10.88.$i.1/24" dev "node$i"
  ip -n "$router" link set "node$i" up
  ip -n "$router" neigh replace "10.88.$i.2" lladdr "$nmac" dev "node$i" nud permanent
  ip -n "$ns" addr add "10.88.$i.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" neigh replace "10.88.$i.1" lladdr "$rmac" dev eth0 nud permanent
  ip -n "$ns" route add default via "10.88.$i.1"

  k apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $n
  labels: {role: ${role[$n]}, kubernetes.io/hostname: $n}
NODE
  k patch node "$n" --subresource=status --type=merge -p '{"status":{"conditions":[{"type":"Ready",
    "status":"True","reason":"SimulatedNode","message":"bpfchain demo: network namespace '"$ns"'"}],
    "addresses":[{"type":"InternalIP","address":"10.88.'"$i"'.2"}]}}' >/dev/null

  mkdir -p "$work/$n"
  spawn "agent-$n" "$bin/bpfchain-agent" --node-name "$n" --kubeconfig "$kubeconfig" \
    --netns "/run/netns/$ns" --state-dir "$work/$n/state" --bpffs "$bpffs/$n" \
    --socket "$work/$n/agent.sock" --metrics-address "127.0.0.1:$(agent_port $i)" \
    --detach-on-exit
  info "$n  role=${role[$n]}  netns $ns  eth0 10.88.$i.2  agent metrics 127.0.0.1:$(agent_port $i)"
done
for i in 1 2 3; do
  wait_for "bpfchain-agent of node-$i" 60 curl -fsS "http://127.0.0.1:$(agent_port $i)/readyz" ||
    { show_log_tail "agent-node-$i"; exit 1; }
done
info "agents ready ($(elapsed))"
k get nodes -L role

# ------------------------------------------------------------------------------------------
say "kubectl apply -f examples/counter.yaml -f examples/edge-protect.yaml"
k apply -f examples/counter.yaml -f examples/edge-protect.yaml
info "count-eth0: a counter on eth0 of every node (XDP, priority 50: runs first)"
info "edge-protect: on role=edge: drop port 9999 and 23, rate-limit each source (burst 200, 1000/s), count"

say "rolling out (canary first, then batches; READY is ready/matched nodes)"
status_line() {
  k get bpfchains -o jsonpath='{range .items[*]}{.metadata.name} {.status.ready} {.status.conditions[?(@.type=="Progressing")].reason}{"\t"}{end}' 2>/dev/null
}
all_ready() {
  local want=$1 got
  got=$(k get bpfchains -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}/{.status.observedGeneration}/{.metadata.generation} {end}')
  [[ $got == "$want" ]]
}
last="" deadline=$(($(date +%s) + 120))
until all_ready "count-eth0=True/1/1 edge-protect=True/1/1 "; do
  line=$(status_line)
  [[ $line != "$last" ]] && info "$(elapsed)  $line" && last=$line
  if (($(date +%s) >= deadline)); then
    k describe bpfchains >&2 || true
    k get bpfnodeconfigs -o yaml >&2 || true
    show_log_tail agent-node-1
    show_log_tail operator
    die "the chains did not become Ready within 120 s"
  fi
  sleep 0.2
done
info "$(elapsed)  $(status_line)"
k get bpfchains,bpfnodeconfigs

# ------------------------------------------------------------------------------------------
say "traffic: UDP from the router namespace to every node's eth0"
cat >"$work/traffic.py" <<'PY'
# Sends UDP from one network namespace to sockets bound in others and counts what arrives.
# argv: ROUTER_NS then flows NODE:ROLE:NS:ADDRESS:PORT:COUNT:INTERVAL_MS:LABEL.
import ctypes, os, socket, sys, time

libc = ctypes.CDLL(None, use_errno=True)

def enter(ns):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(fd)

home = os.open("/proc/self/ns/net", os.O_RDONLY)
flows = [f.split(":", 7) for f in sys.argv[2:]]
for f in flows:
    enter(f[2])
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: room for a whole flood
    rx.bind((f[3], int(f[4])))
    rx.setblocking(False)
    f.append(rx)
enter(sys.argv[1])
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"bpfchain-demo".ljust(64, b".")
for f in flows:
    count, interval = int(f[5]), float(f[6]) / 1000
    start = time.monotonic()
    for k in range(count):
        if interval:
            delay = start + k * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        tx.sendto(payload, (f[3], int(f[4])))
time.sleep(0.5)
print("%-7s %-5s %5s  %-30s %6s %9s" % ("NODE", "ROLE", "PORT", "TRAFFIC", "SENT", "RECEIVED"))
for f in flows:
    received = 0
    while True:
        try:
            f[8].recv(2048)
            received += 1
        except BlockingIOError:
            break
    print("%-7s %-5s %5s  %-30s %6s %9d" % (f[0], f[1], f[4], f[7], f[5], received))
PY
flows=()
i=0
for n in "${nodes[@]}"; do
  i=$((i + 1))
  ns=$(netns_of "$n")
  flows+=("$n:${role[$n]}:$ns:10.88.$i.2:7000:300:2:paced, 500 packets/s"
    "$n:${role[$n]}:$ns:10.88.$i.2:9999:300:0:to the filtered port"
    "$n:${role[$n]}:$ns:10.88.$i.2:7001:3000:0:a flood, as fast as possible")
done
python3 "$work/traffic.py" "$router" "${flows[@]}" | sed 's/^/  /'
info "edge nodes: 9999 is dropped by portfilter; the flood is cut by ratelimit to the burst"
info "(200) plus 1000/s; node-3 (core) runs only the counter and receives everything."

# ------------------------------------------------------------------------------------------
say "metrics of node-1's agent (http://127.0.0.1:$(agent_port 1)/metrics), a selection"
metrics=$(curl -fsS "http://127.0.0.1:$(agent_port 1)/metrics")
{
  grep -E '^bpfchain_monitor_map_value\{' <<<"$metrics" | grep 'field="packets"' | grep -v 'max-rate' || true
  grep -E '^bpfchain_program_packets_total\{' <<<"$metrics" | grep -E 'verdict="(drop|seen)"' || true
  grep -E '^bpfchain_root_runs_total\{' <<<"$metrics" || true
} | sed 's/^/  /'
say "metrics of the operator (http://127.0.0.1:$operator_port/metrics)"
curl -fsS "http://127.0.0.1:$operator_port/metrics" | grep -E '^bpfchain_operator_rollout_nodes\{' |
  grep -v ' 0$' | sed 's/^/  /' || true

say "kubectl get bpfchains,bpfnodeconfigs"
k get bpfchains,bpfnodeconfigs
k get bpfnodeconfig node-1 -o jsonpath='{range .status.chains[*]}  node-1: {.name} generation {.generation}: {.phase}, attached to {.attachments[*].interface} ({.attachments[*].hook}), program IDs {.attachments[*].programIDs}{"\n"}{end}'
say "bpfchain-agent status on node-1 (asks its agent over $work/node-1/agent.sock)"
"$bin/bpfchain-agent" status --socket "$work/node-1/agent.sock"
say "kubectl bpfchain status (the kubectl-bpfchain plugin in $bin)"
# kubectl takes no flags before a plugin's name: the plugin reads --kubeconfig itself.
PATH="$bin:$PATH" kubectl bpfchain status --kubeconfig "$kubeconfig"

if ((keep)); then
  say "running until Ctrl-C; try:"
  info "export KUBECONFIG=$kubeconfig"
  info "kubectl get bpfchains,bpfnodeconfigs; kubectl describe bpfchain edge-protect"
  info "curl -s 127.0.0.1:$(agent_port 1)/metrics | grep bpfchain_; logs in $work/"
  trap 'exit 0' INT TERM # Ctrl-C is how --keep ends
  while sleep 3600; do :; done
fi
