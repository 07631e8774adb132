#!/usr/bin/env bash
# A real kube-apiserver + etcd on loopback, started the way controller-runtime's envtest starts
# them (DESIGN.md section 8). No controllers, no scheduler, no kubelet: tests create what they need.
#
# Usage:
#   scripts/local-cluster.sh up [--dir DIR] [--owner-pid PID] [--node]
#       Starts etcd and kube-apiserver; prints ONE line on stdout: the absolute path of an admin
#       kubeconfig (user admin, group system:masters; certificates embedded). All else goes to
#       stderr. DIR (default: a new mktemp -d ${TMPDIR:-/tmp}/bpfchain-cluster.XXXXXX; if given, it
#       must be absent or empty) holds everything: certs/, etcd/, *.log, *.pid, kubeconfig, env,
#       owner. With --owner-pid, a detached watchdog runs `down --dir DIR` within ~1 s of PID's
#       death (pass your own pid: a test killed by SIGKILL then leaves nothing behind). Without
#       --owner-pid, DIR is recorded in ${TMPDIR:-/tmp}/bpfchain-cluster.last for a bare `down`.
#       On failure: the tail of the relevant log on stderr, everything started is torn down, exit 1.
#       --node: kube-apiserver as a real node needs it (scripts/local-node.sh uses it): the
#       ServiceAccount admission plugin on, NodeRestriction on, --authorization-mode=Node,RBAC,
#       --kubelet-preferred-address-types=InternalIP and the admin certificate as its kubelet
#       client certificate; it binds 0.0.0.0 (pods reach it at the machine's address, which
#       with 10.0.0.1, the kubernetes Service, is in its certificate). Without it (the default, for every other test): ServiceAccount
#       admission off and RBAC only, as before.
#   scripts/local-cluster.sh down [--dir DIR]
#       Stops the watchdog, kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s); removes DIR.
#       Without --dir: the dir recorded by the last owner-less `up`. Idempotent (a missing or
#       half-started DIR is fine); refuses a non-empty DIR that `up` did not make.
#   scripts/local-cluster.sh down --all-stale
#       Runs `down` on every ${TMPDIR:-/tmp}/bpfchain-cluster.* dir whose owner is dead, whose
#       etcd and kube-apiserver are both dead, or whose `up` was killed before it finished (dirs
#       whose `up` is still running are skipped).
#   scripts/local-cluster.sh env [--dir DIR]
#       Prints DIR/env: shell exports of KUBECONFIG, BPFCHAIN_APISERVER_URL, ETCD_ENDPOINT and
#       BPFCHAIN_CLUSTER_DIR. Use: eval "$(scripts/local-cluster.sh env)".
#   scripts/local-cluster.sh compact [--dir DIR]
#       Fault for tests: compacts etcd's history up to its current revision (physically, through
#       etcd's JSON gateway), so every older resourceVersion is gone from etcd. Prints ONE line:
#       that revision. Compacting twice at the same revision is not an error.
#   scripts/local-cluster.sh restart-apiserver [--dir DIR] [--down-seconds N]
#       Fault for tests: SIGKILLs kube-apiserver (its clients see their connections drop), waits
#       N seconds (default 0; fractions allowed), starts it again with the same command line (so
#       the same port and certificates; recorded by `up` in DIR/kube-apiserver.cmdline) and waits
#       for /readyz. etcd and its data are untouched. On failure: the log's tail, exit 1.
#   Without --dir, compact and restart-apiserver act on the dir recorded by the last owner-less up.
#
# Environment: BPFCHAIN_CLUSTER_START_TIMEOUT (seconds, default 60) bounds the wait for etcd and
# for kube-apiserver each; binaries come from tools/envtest/build.sh (which honours
# KUBEBUILDER_ASSETS and BPFCHAIN_TOOLS_DIR, and builds on first use).
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$self")/.." && pwd)
tmpbase=${TMPDIR:-/tmp}
tmpbase=${tmpbase%/}
last_file="$tmpbase/bpfchain-cluster.last"
marker=.bpfchain-cluster
start_timeout=${BPFCHAIN_CLUSTER_START_TIMEOUT:-60}

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2; }
# shellcheck source=scripts/lib/processes.sh
source "$(dirname "$self")/lib/processes.sh"

do_down() { # DIR
    local dir=$1 pid
    if [[ ! -e "$dir" ]]; then
        log "$dir: already gone"
        return 0
    fi
    [[ -d "$dir" && ! -L "$dir" ]] || die "$dir is not a directory"
    if [[ ! -f "$dir/$marker" ]]; then
        if [[ -z "$(ls -A "$dir")" ]]; then
            rmdir "$dir" 2>/dev/null || true
            return 0
        fi
        die "$dir is not a local-cluster dir (no $marker); not removing it"
    fi
    # The watchdog first (its process group, to take its sleep along), unless we are it.
    if pid=$(read_pid "$dir/watchdog.pid") && [[ "$pid" != "$$" ]] && ours "$pid" "$dir"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
    stop_proc "$dir" kube-apiserver
    stop_proc "$dir" etcd
    # A concurrent down (user and watchdog) may race us in rm; try again once.
    rm -rf -- "$dir" 2>/dev/null || rm -rf -- "$dir"
    if [[ -f "$last_file" && "$(cat "$last_file" 2>/dev/null)" == "$dir" ]]; then
        rm -f "$last_file"
    fi
    log "stopped; removed $dir"
}

# --- up ----------------------------------------------------------------------------------------

gen_certs() { # DIR
    local d=$1/certs cnf extra_san=""
    # In --node mode pods reach the API server as the kubernetes Service (10.0.0.1) and at the
    # node's address (the Service's endpoint).
    if ((node_mode)); then extra_san=", IP:10.0.0.1, IP:$node_ip"; fi
    mkdir -p "$d"
    cnf="$d/openssl.cnf"
    cat >"$cnf" <<EOF
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost$extra_san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    local days=7 ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    ca() { # NAME CN
        openssl req -x509 -new -config "$cnf" -extensions ca_ext "${ec[@]}" \
            -keyout "$d/$1.key" -out "$d/$1.crt" -days "$days" -subj "/CN=$2" 2>/dev/null
    }
    leaf() { # NAME CA SUBJECT EXT
        openssl req -new -config "$cnf" "${ec[@]}" \
            -keyout "$d/$1.key" -out "$d/$1.csr" -subj "$3" 2>/dev/null
        openssl x509 -req -in "$d/$1.csr" -CA "$d/$2.crt" -CAkey "$d/$2.key" \
            -set_serial "0x$(openssl rand -hex 16)" -days "$days" \
            -extfile "$cnf" -extensions "$4" -out "$d/$1.crt" 2>/dev/null
        rm -f "$d/$1.csr"
    }
    ca ca "bpfchain-local-cluster-ca" || return 1
    leaf apiserver ca "/CN=localhost" server_ext || return 1
    ca client-ca "bpfchain-local-cluster-client-ca" || return 1
    leaf admin client-ca "/CN=admin/O=system:masters" client_ext || return 1
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/sa.key" 2>/dev/null &&
        openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

free_ports() { # COUNT: distinct free loopback ports, space separated
    python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# wait_ready DIR NAME URL CURL_ARGS...: 0 when ready, 2 when NAME died of a port clash, 1 else.
wait_ready() {
    local dir=$1 name=$2 url=$3 deadline pid
    shift 3
    deadline=$(($(date +%s) + start_timeout))
    pid=$(read_pid "$dir/$name.pid") || return 1
    while :; do
        if curl -fsS --max-time 2 "$@" "$url" >/dev/null 2>&1; then
            return 0
        fi
        if ! ours "$pid" "$dir"; then
            if grep -qi 'address already in use' "$dir/$name.log" 2>/dev/null; then
                log "$name: port taken meanwhile; retrying with other ports"
                return 2
            fi
            log "error: $name exited before becoming ready"
            tail_log "$dir/$name.log"
            return 1
        fi
        if (($(date +%s) >= deadline)); then
            log "error: $name not ready at $url after ${start_timeout} s"
            tail_log "$dir/$name.log"
            return 1
        fi
        sleep 0.2
    done
}

start_etcd() { # DIR PORT_CLIENT PORT_PEER
    local dir=$1 curl="http://127.0.0.1:$2" purl="http://127.0.0.1:$3"
    rm -rf "$dir/etcd"
    spawn "$dir" etcd "$bin/etcd" \
        --name=default \
        --data-dir="$dir/etcd" \
        --listen-client-urls="$curl" \
        --advertise-client-urls="$curl" \
        --listen-peer-urls="$purl" \
        --initial-advertise-peer-urls="$purl" \
        --initial-cluster="default=$purl" \
        --unsafe-no-fsync=true \
        --quota-backend-bytes=$((1024 * 1024 * 1024))
}

start_apiserver() { # DIR PORT ETCD_URL
    local dir=$1 port=$2 c="$1/certs" bind_address=127.0.0.1
    if ((node_mode)); then bind_address=0.0.0.0; fi
    local args=("$bin/kube-apiserver"
        --etcd-servers="$3"
        --cert-dir="$c"
        --tls-cert-file="$c/apiserver.crt"
        --tls-private-key-file="$c/apiserver.key"
        --secure-port="$port"
        --bind-address="$bind_address"
        --service-cluster-ip-range=10.0.0.0/24
        --allow-privileged=true)
    if ((node_mode)); then
        args+=(--enable-admission-plugins=NodeRestriction
            --authorization-mode=Node,RBAC
            --kubelet-preferred-address-types=InternalIP
            --kubelet-client-certificate="$c/admin.crt"
            --kubelet-client-key="$c/admin.key")
    else
        args+=(--disable-admission-plugins=ServiceAccount --authorization-mode=RBAC)
    fi
    args+=(
        --service-account-issuer="https://127.0.0.1:$port/"
        --service-account-key-file="$c/sa.pub"
        --service-account-signing-key-file="$c/sa.key"
        --client-ca-file="$c/client-ca.crt")
    # restart-apiserver starts it again exactly so: same port, same certificates.
    printf '%s\0' "${args[@]}" >"$dir/kube-apiserver.cmdline"
    spawn "$dir" kube-apiserver "${args[@]}"
}

write_kubeconfig() { # DIR URL
    local dir=$1 url=$2 c="$1/certs"
    cat >"$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bpfchain-local
  cluster:
    server: $url
    certificate-authority-data: $(base64 -w0 "$c/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 "$c/admin.crt")
    client-key-data: $(base64 -w0 "$c/admin.key")
contexts:
- name: bpfchain-local
  context:
    cluster: bpfchain-local
    user: admin
current-context: bpfchain-local
preferences: {}
EOF
    mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
}

node_mode=0
node_ip=""

cmd_up() {
    local dir="" owner="" owner_start="" t0 attempt ports pe pp pa eurl aurl rc
    while (($#)); do
        case "$1" in
            --dir) dir=${2:?--dir needs a value}; shift ;;
            --dir=*) dir=${1#--dir=} ;;
            --owner-pid) owner=${2:?--owner-pid needs a value}; shift ;;
            --owner-pid=*) owner=${1#--owner-pid=} ;;
            --node) node_mode=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage; die "up: unknown argument: $1" ;;
        esac
        shift
    done
    if [[ -n "$owner" ]]; then
        owner_start=$(proc_start "$owner") || die "--owner-pid $owner: no such live process"
    fi
    if [[ -n "$dir" ]]; then
        dir=$(readlink -m "$dir")
        [[ ! -e "$dir" || -z "$(ls -A "$dir" 2>/dev/null)" ]] || die "--dir $dir is not empty"
    fi
    for c in openssl curl python3 setsid flock; do
        command -v "$c" >/dev/null 2>&1 || die "$c is required"
    done

    bin=$("$root/tools/envtest/build.sh") || die "tools/envtest/build.sh failed"
    t0=$(now_ms)

    umask 077
    if [[ -z "$dir" ]]; then
        mkdir -p "$tmpbase"
        dir=$(mktemp -d "$tmpbase/bpfchain-cluster.XXXXXX")
    else
        mkdir -p "$dir"
    fi
    claim_dir "$dir" "$owner" "$owner_start"

    if ((node_mode)); then
        node_ip=$(ip -4 -o route get 192.0.2.255 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
        [[ -n "$node_ip" ]] ||
            node_ip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
        [[ -n "$node_ip" ]] || die "--node: no global IPv4 address on this machine"
    fi
    gen_certs "$dir" || die "certificate generation with openssl failed"
    local c="$dir/certs"
    local auth=(--cacert "$c/ca.crt" --cert "$c/admin.crt" --key "$c/admin.key")

    for attempt in 1 2 3; do
        ports=$(free_ports 3) || die "cannot find free loopback ports (python3)"
        read -r pe pp pa <<<"$ports"
        eurl="http://127.0.0.1:$pe"
        aurl="https://127.0.0.1:$pa"

        start_etcd "$dir" "$pe" "$pp"
        rc=0
        wait_ready "$dir" etcd "$eurl/health" || rc=$?
        if ((rc == 2 && attempt < 3)); then
            stop_proc "$dir" etcd
            continue
        fi
        ((rc == 0)) || exit 1
        log "etcd ready at $eurl ($(($(now_ms) - t0)) ms)"

        start_apiserver "$dir" "$pa" "$eurl"
        rc=0
        wait_ready "$dir" kube-apiserver "$aurl/readyz" "${auth[@]}" || rc=$?
        if ((rc == 2 && attempt < 3)); then
            stop_proc "$dir" kube-apiserver
            stop_proc "$dir" etcd
            continue
        fi
        ((rc == 0)) || exit 1
        # As envtest does: the bootstrap controller has created the default namespace.
        wait_ready "$dir" kube-apiserver "$aurl/api/v1/namespaces/default" "${auth[@]}" || exit 1
        break
    done

    write_kubeconfig "$dir" "$aurl"
    {
        printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
        printf 'export BPFCHAIN_APISERVER_URL=%q\n' "$aurl"
        printf 'export ETCD_ENDPOINT=%q\n' "$eurl"
        printf 'export BPFCHAIN_CLUSTER_DIR=%q\n' "$dir"
    } >"$dir/env"
    up_ok=1
    log "kube-apiserver ready at $aurl in $(($(now_ms) - t0)) ms (dir $dir)"
    printf '%s\n' "$dir/kubeconfig"
}

# --- down / env --------------------------------------------------------------------------------

recorded_dir() {
    local d=""
    [[ -f "$last_file" ]] && d=$(head -n1 "$last_file")
    printf '%s\n' "$d"
}

# DIR: 0 if the cluster in DIR should be swept (kubeconfig: written when up finished).
stale() { dir_stale "$1" kubeconfig etcd kube-apiserver; }

cmd_down() { cmd_down_of bpfchain-cluster "cluster(s)" "$@"; }

cmd_env() {
    local dir=""
    while (($#)); do
        case "$1" in
            --dir) dir=${2:?--dir needs a value}; shift ;;
            --dir=*) dir=${1#--dir=} ;;
            *) usage; die "env: unknown argument: $1" ;;
        esac
        shift
    done
    [[ -n "$dir" ]] || dir=$(recorded_dir)
    [[ -n "$dir" ]] || die "no cluster recorded in $last_file; pass --dir"
    [[ -f "$dir/env" ]] || die "$dir/env not found (cluster not up?)"
    cat "$dir/env"
}

# --- faults for tests --------------------------------------------------------------------------

# fault_dir SUBCOMMAND DIR: the finished cluster dir to act on (DIR, else the one last recorded).
fault_dir() {
    local what=$1 dir=$2
    [[ -n "$dir" ]] || dir=$(recorded_dir)
    [[ -n "$dir" ]] || die "$what: no cluster recorded in $last_file; pass --dir"
    dir=$(readlink -m "$dir")
    [[ -f "$dir/$marker" && -f "$dir/env" ]] || die "$what: $dir is not a local cluster that is up"
    printf '%s\n' "$dir"
}

env_value() { # DIR NAME: the value DIR/env exports for NAME
    # shellcheck source=/dev/null
    (. "$1/env" && printf '%s\n' "${!2:-}")
}

json_get() { # JSON KEY...: the value at that path of keys, or nothing
    python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2:]:
    v = v.get(k) if isinstance(v, dict) else None
if v is not None:
    print(v)
' "$@"
}

cmd_compact() {
    local dir="" ep out rev err
    while (($#)); do
        case "$1" in
            --dir) dir=${2:?--dir needs a value}; shift ;;
            --dir=*) dir=${1#--dir=} ;;
            -h | --help) usage; exit 0 ;;
            *) usage; die "compact: unknown argument: $1" ;;
        esac
        shift
    done
    dir=$(fault_dir compact "$dir") || exit 1
    ep=$(env_value "$dir" ETCD_ENDPOINT)
    [[ -n "$ep" ]] || die "compact: no ETCD_ENDPOINT in $dir/env"
    # Any key will do: every answer's header carries the store's current revision.
    out=$(curl -sS --max-time 10 -X POST "$ep/v3/kv/range" -d '{"key":"AA==","limit":1}') ||
        die "compact: etcd at $ep did not answer"
    rev=$(json_get "$out" header revision)
    [[ "$rev" =~ ^[0-9]+$ ]] || die "compact: no revision in etcd's answer: $out"
    out=$(curl -sS --max-time 60 -X POST "$ep/v3/kv/compaction" \
        -d "{\"revision\":\"$rev\",\"physical\":true}") || die "compact: etcd at $ep did not answer"
    err=$(json_get "$out" error)
    # Already compacted at this revision (nothing written since): the same end state.
    if [[ -n "$err" && "$err" != *"required revision has been compacted"* ]]; then
        die "compact: etcd refused compaction at revision $rev: $err"
    fi
    log "compacted etcd at $ep to revision $rev"
    printf '%s\n' "$rev"
}

cmd_restart_apiserver() {
    local dir="" down=0 url pid i c args=()
    while (($#)); do
        case "$1" in
            --dir) dir=${2:?--dir needs a value}; shift ;;
            --dir=*) dir=${1#--dir=} ;;
            --down-seconds) down=${2:?--down-seconds needs a value}; shift ;;
            --down-seconds=*) down=${1#--down-seconds=} ;;
            -h | --help) usage; exit 0 ;;
            *) usage; die "restart-apiserver: unknown argument: $1" ;;
        esac
        shift
    done
    [[ "$down" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart-apiserver: --down-seconds $down is not a number"
    dir=$(fault_dir restart-apiserver "$dir") || exit 1
    url=$(env_value "$dir" BPFCHAIN_APISERVER_URL)
    [[ -n "$url" ]] || die "restart-apiserver: no BPFCHAIN_APISERVER_URL in $dir/env"
    # The command line up recorded; for a cluster up'd before that was recorded, the running one's.
    if [[ -s "$dir/kube-apiserver.cmdline" ]]; then
        mapfile -d '' -t args <"$dir/kube-apiserver.cmdline"
    elif pid=$(read_pid "$dir/kube-apiserver.pid") && ours "$pid" "$dir"; then
        mapfile -d '' -t args <"/proc/$pid/cmdline"
    fi
    ((${#args[@]} > 0)) || die "restart-apiserver: no kube-apiserver command line for $dir"
    # Held as up holds it: down --all-stale leaves the cluster alone while kube-apiserver is down.
    exec 8>"$dir/.lock"
    flock 8
    if pid=$(read_pid "$dir/kube-apiserver.pid") && ours "$pid" "$dir"; then
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            ours "$pid" "$dir" || break
            sleep 0.05
        done
        ! ours "$pid" "$dir" || die "restart-apiserver: kube-apiserver (pid $pid) survived SIGKILL"
        log "killed kube-apiserver (pid $pid); down for $down s"
    fi
    sleep "$down"
    spawn "$dir" kube-apiserver "${args[@]}"
    c="$dir/certs"
    wait_ready "$dir" kube-apiserver "$url/readyz" \
        --cacert "$c/ca.crt" --cert "$c/admin.crt" --key "$c/admin.key" ||
        die "restart-apiserver: kube-apiserver did not come back at $url"
    log "kube-apiserver ready again at $url (pid $(read_pid "$dir/kube-apiserver.pid"))"
}

# --- internal: __exec and __watchdog are in lib/processes.sh -------------------------------------

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    env) shift; cmd_env "$@" ;;
    compact) shift; cmd_compact "$@" ;;
    restart-apiserver) shift; cmd_restart_apiserver "$@" ;;
    __exec) shift; cmd_exec "$@" ;;
    __watchdog) shift; cmd_watchdog "$@" ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
esac
