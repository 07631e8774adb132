# Process bookkeeping shared by scripts/local-cluster.sh and scripts/local-node.sh: detached
# processes with pid files under a private directory, stopped only when they are still ours,
# and the life of that directory (claimed by `up`, removed by `down`, swept when stale).
# The sourcing script defines log, die, usage, $self (its own path: spawn re-executes it as
# `$self __exec PIDFILE BIN ARGS...`), do_down DIR (what its watchdog runs), $tmpbase,
# $last_file (the directory of the last owner-less up) and $marker (the file `up` leaves in each
# directory it makes).

now_ms() { date +%s%3N; }

# proc_start PID: prints the start time (jiffies since boot) of a live process; fails if PID is
# gone or a zombie. PID plus start time names a process even across pid reuse.
proc_start() {
    local stat fields
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra fields <<<"${stat##*) }" # fields[0] is field 3 (state); field 22 is fields[19]
    [[ "${fields[0]}" != Z && "${fields[0]}" != X ]] || return 1
    printf '%s\n' "${fields[19]}"
}

# ours PID DIR: PID is alive and its command line names DIR (guards against pid reuse).
ours() {
    local pid=$1 dir=$2 arg
    proc_start "$pid" >/dev/null || return 1
    while IFS= read -r -d '' arg; do
        case "$arg" in
            "$dir" | "$dir"/* | *="$dir" | *="$dir"/*) return 0 ;;
        esac
    done <"/proc/$pid/cmdline" 2>/dev/null
    return 1
}

read_pid() { # FILE
    local pid=""
    [[ -f "$1" ]] && pid=$(head -n1 "$1" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
}

# stop_proc DIR NAME [TIMEOUT]: SIGTERM, then SIGKILL after TIMEOUT s (10).
stop_proc() {
    local dir=$1 name=$2 t=${3:-10} pid i
    pid=$(read_pid "$dir/$name.pid") || return 0
    if ours "$pid" "$dir"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < t * 10; i++)); do
            ours "$pid" "$dir" || break
            sleep 0.1
        done
        if ours "$pid" "$dir"; then
            log "$name (pid $pid) still running after $t s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                ours "$pid" "$dir" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$dir/$name.pid"
}

# spawn DIR NAME BIN ARGS...: a detached process (own session), log DIR/NAME.log, pid DIR/NAME.pid.
spawn() {
    local dir=$1 name=$2 i
    shift 2
    rm -f "$dir/$name.pid"
    # A retry's log starts afresh (port-clash detection greps it); keep the previous one.
    [[ ! -e "$dir/$name.log" ]] || mv -f "$dir/$name.log" "$dir/$name.log.prev"
    setsid "$self" __exec "$dir/$name.pid" "$@" </dev/null >>"$dir/$name.log" 2>&1 8>&- &
    for ((i = 0; i < 100; i++)); do
        [[ -s "$dir/$name.pid" ]] && return 0
        sleep 0.05
    done
    die "$name did not start"
}

tail_log() { # FILE
    log "---- last lines of $1 ----"
    tail -n 40 "$1" >&2 2>/dev/null || true
    log "---- end of $1 ----"
}

# __exec PIDFILE BIN ARGS...: record our pid, then become BIN (so the pid is BIN's).
cmd_exec() {
    local pidfile=$1
    shift
    printf '%s\n' "$$" >"$pidfile"
    exec "$@"
}

# __watchdog DIR OWNER OWNER_START: `down` of DIR once OWNER is gone (or is another process).
cmd_watchdog() {
    local dir=$1 owner=$2 start=$3 now
    printf '%s\n' "$$" >"$dir/watchdog.pid"
    cd /
    while now=$(proc_start "$owner") && [[ "$now" == "$start" ]]; do
        sleep 1
    done
    log "owner pid $owner is gone; tearing down $dir"
    # In-process (do_down skips killing $$): works even if the script's file is gone by now.
    do_down "$dir"
}

# sweep_stale PREFIX WHAT: `down` of each directory $tmpbase/PREFIX.* (with $marker) that
# `stale DIR` (the sourcing script's, usually dir_stale) says should go; prints each one
# removed, logs how many.
sweep_stale() {
    local prefix=$1 what=$2 d n=0
    for d in "$tmpbase/$prefix".*; do
        [[ -d "$d" && ! -L "$d" && -f "$d/$marker" ]] || continue
        if stale "$d"; then
            do_down "$d"
            printf '%s\n' "$d"
            n=$((n + 1))
        fi
    done
    log "swept $n stale $what"
}

# up_cleanup: the EXIT trap claim_dir sets: a failed `up` (up_ok still 0) tears $up_dir down.
up_dir=""
up_ok=0
up_cleanup() {
    if ((up_ok == 0)) && [[ -n "$up_dir" ]]; then
        log "start-up failed; tearing down $up_dir"
        do_down "$up_dir" || true
    fi
}

# claim_dir DIR OWNER OWNER_START: DIR (existing, empty) becomes this `up`'s: torn down if up
# fails, locked while up runs (fd 8: down --all-stale skips it; never inherited by what we
# start), marked, with its owner recorded; then a watchdog that runs `down` once OWNER is gone,
# or, with no owner, DIR recorded in $last_file for a bare `down`.
claim_dir() {
    local dir=$1 owner=$2 owner_start=$3
    up_dir=$dir
    trap up_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    exec 8>"$dir/.lock"
    flock 8
    : >"$dir/$marker"
    printf '%s\n' "$owner" >"$dir/owner"
    printf '%s\n' "$owner_start" >"$dir/owner.start"
    if [[ -n "$owner" ]]; then
        spawn "$dir" watchdog "$self" __watchdog "$dir" "$owner" "$owner_start"
    else
        printf '%s\n' "$dir" >"$last_file.tmp.$$"
        mv -f "$last_file.tmp.$$" "$last_file"
    fi
}

# dir_stale DIR DONE_FILE NAME...: 0 if DIR should be swept: its `up` is not running (the lock
# is free) and either never finished (no DIR/DONE_FILE), or its owner is gone, or none of the
# processes NAME (pid files in DIR) is alive.
dir_stale() {
    local dir=$1 done_file=$2 owner start now pid n
    shift 2
    flock -n "$dir/.lock" true 2>/dev/null || return 1
    [[ -f "$dir/$done_file" ]] || return 0
    owner=$(head -n1 "$dir/owner" 2>/dev/null || true)
    if [[ -n "$owner" ]]; then
        start=$(head -n1 "$dir/owner.start" 2>/dev/null || true)
        now=$(proc_start "$owner") || return 0
        [[ -z "$start" || "$now" == "$start" ]] || return 0
    fi
    for n in "$@"; do
        if pid=$(read_pid "$dir/$n.pid") && ours "$pid" "$dir"; then return 1; fi
    done
    return 0
}

# cmd_down_of PREFIX WHAT ARGS...: `down [--dir DIR] | down --all-stale` (dirs
# $tmpbase/PREFIX.* that `stale` names; WHAT says what they hold, for the log).
cmd_down_of() {
    local prefix=$1 what=$2 dir="" all=0
    shift 2
    while (($#)); do
        case "$1" in
            --dir) dir=${2:?--dir needs a value}; shift ;;
            --dir=*) dir=${1#--dir=} ;;
            --all-stale) all=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage; die "down: unknown argument: $1" ;;
        esac
        shift
    done
    if ((all)); then
        [[ -z "$dir" ]] || die "down: --all-stale and --dir are exclusive"
        sweep_stale "$prefix" "$what"
        return 0
    fi
    if [[ -z "$dir" ]]; then
        [[ -f "$last_file" ]] && dir=$(head -n1 "$last_file")
        if [[ -z "$dir" ]]; then
            log "no $what recorded in $last_file; nothing to do"
            return 0
        fi
    fi
    [[ "$dir" == /* ]] || dir="$PWD/$dir"
    do_down "${dir%/}"
}
