# Process bookkeeping shared by scripts/local-cluster.sh and scripts/local-node.sh: detached
# processes with pid files under a private directory, stopped only when they are still ours.
# The sourcing script defines log, die, $self (its own path: spawn re-executes it as
# `$self __exec PIDFILE BIN ARGS...`), do_down DIR (what its watchdog runs), and for
# sweep_stale: stale DIR and $marker (the file `up` leaves in each directory it makes).

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
# `stale` says should go; prints each one removed, logs how many.
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
