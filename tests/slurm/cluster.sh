#!/usr/bin/env bash
# Bring up / tear down a real single-node Slurm cluster on loopback (CI tests).
#
# Usage: tests/slurm/cluster.sh up|down|status
#
#   up      install slurmctld/slurmd/slurm-client/munge if missing, write
#           /etc/slurm/slurm.conf (copy in the state dir), start munged,
#           slurmctld, slurmd; wait until the node is idle and `srun true` works.
#           Idempotent: does nothing if the cluster is already up and healthy.
#   down    cancel all jobs, `scontrol shutdown`, then kill (by recorded PID
#           only) whatever this script started and is still alive. Idempotent.
#   status  show daemon state + sinfo; exit 0 if healthy, 1 otherwise.
#
# Environment:
#   LINFLOW_SLURM_DIR   state dir (default /tmp/linflow-slurm): slurm.conf copy,
#                       pidfiles, logs, spool and state-save dirs.
#   LINFLOW_SLURM_UP_TIMEOUT  seconds to wait for the node to become idle (60).
#
# Exit codes: 0 ok, 1 failure, 2 bad usage, 77 skip (not root / cannot install).
set -euo pipefail

readonly PROG=${0##*/}
readonly STATE_DIR=${LINFLOW_SLURM_DIR:-/tmp/linflow-slurm}
readonly UP_TIMEOUT=${LINFLOW_SLURM_UP_TIMEOUT:-60}
readonly SYS_CONF=/etc/slurm/slurm.conf
readonly CONF_MARKER="# managed by linflow tests/slurm/cluster.sh"
readonly PACKAGES=(slurmctld slurmd slurm-client munge)
readonly PID_CTLD=$STATE_DIR/slurmctld.pid
readonly PID_SLURMD=$STATE_DIR/slurmd.pid
readonly PID_MUNGED=$STATE_DIR/munged.pid
readonly LOG_DIR=$STATE_DIR/log
export SLURM_CONF=$SYS_CONF
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
cd /

log()  { printf '[%s] %s\n' "$PROG" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$PROG" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
skip() { printf '[%s] SKIP: %s\n' "$PROG" "$*" >&2; exit 77; }

usage() {
    echo "usage: $PROG up|down|status" >&2
    echo "  state dir: \$LINFLOW_SLURM_DIR (default /tmp/linflow-slurm)" >&2
}

node_name() { hostname -s 2>/dev/null || hostname; }

# ---------------------------------------------------------------- processes
# pid_of_ours FILE EXE -> prints PID if FILE holds a live PID whose executable
# basename is EXE (guards against recycled PIDs). Returns 1 otherwise.
pid_of_ours() {
    local file=$1 exe=$2 pid path
    [[ -r $file ]] || return 1
    pid=$(tr -dc '0-9' <"$file" 2>/dev/null || true)
    [[ -n $pid ]] || return 1
    [[ -d /proc/$pid ]] || return 1
    path=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    exe_matches "$path" "$exe" || return 1
    echo "$pid"
}

# exe_matches PATH NAME: PATH (from /proc/PID/exe) is the binary NAME.
# Debian installs slurm daemons via alternatives (/usr/sbin/slurmd -> slurmd-wlm).
exe_matches() {
    local path=${1% (deleted)} name=$2 real
    [[ ${path##*/} == "$name" || ${path##*/} == "$name-wlm" ]] && return 0
    real=$(readlink -f "/usr/sbin/$name" 2>/dev/null || true)
    [[ -n $real && $path == "$real" ]]
}

pid_alive() { [[ -d /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# wait_gone TIMEOUT PID... -> 0 when all are gone
wait_gone() {
    local t=$1; shift
    local deadline=$((SECONDS + t)) p any
    while :; do
        any=0
        for p in "$@"; do pid_alive "$p" && any=1; done
        ((any == 0)) && return 0
        ((SECONDS >= deadline)) && return 1
        sleep 0.2
    done
}

# terminate [-t SECS] PID... : TERM, wait up to SECS (default 10), then KILL.
terminate() {
    local p live=() t=10
    if [[ ${1:-} == -t ]]; then t=$2; shift 2; fi
    for p in "$@"; do pid_alive "$p" && live+=("$p"); done
    ((${#live[@]})) || return 0
    kill -TERM "${live[@]}" 2>/dev/null || true
    if ! wait_gone "$t" "${live[@]}"; then
        warn "still alive after TERM, sending KILL: ${live[*]}"
        kill -KILL "${live[@]}" 2>/dev/null || true
        wait_gone 5 "${live[@]}" || warn "could not kill: ${live[*]}"
    fi
}

# descendants PID -> all transitive children (by PPid)
descendants() {
    local root=$1 st pid ppid
    local -A kids=()
    for st in /proc/[0-9]*/stat; do
        pid=${st#/proc/}; pid=${pid%/stat}
        ppid=$(awk '{sub(/^.*\) /,""); print $2}' "$st" 2>/dev/null) || continue
        [[ -n $ppid ]] && kids[$ppid]+="$pid "
    done
    local queue=("$root") cur c
    while ((${#queue[@]})); do
        cur=${queue[0]}; queue=("${queue[@]:1}")
        for c in ${kids[$cur]:-}; do echo "$c"; queue+=("$c"); done
    done
    return 0
}

# slurmstepd processes belonging to *our* slurmd: a slurmstepd whose parent is
# our slurmd, or that holds an fd into our state dir (slurmd log / spool socket;
# slurmd double-forks its stepds, so they are usually reparented).
our_stepds() {
    local slurmd_pid=${1:-} d pid path ppid fd tgt
    local -A inodes=()
    # unix socket inodes bound under our spool dir
    while read -r _ _ _ _ _ _ inode sock; do
        [[ $sock == "$STATE_DIR"/* ]] && inodes[$inode]=1
    done < <(tail -n +2 /proc/net/unix 2>/dev/null || true)
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        path=$(readlink "$d/exe" 2>/dev/null || true)
        exe_matches "$path" slurmstepd || continue
        ppid=$(awk '/^PPid:/{print $2}' "$d/status" 2>/dev/null || true)
        if [[ -n $slurmd_pid && $ppid == "$slurmd_pid" ]]; then echo "$pid"; continue; fi
        for fd in "$d"/fd/*; do
            tgt=$(readlink "$fd" 2>/dev/null || true)
            if [[ $tgt == "$STATE_DIR"/* ]]; then echo "$pid"; break; fi
            if [[ $tgt =~ ^socket:\[([0-9]+)\]$ && -n ${inodes[${BASH_REMATCH[1]}]:-} ]]; then
                echo "$pid"; break
            fi
        done
    done
    return 0
}

munge_works() { timeout 5 munge -n </dev/null 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

# -------------------------------------------------------------- installation
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

POLICY=/usr/sbin/policy-rc.d
POLICY_BAK=""
POLICY_CREATED=0
restore_policy() {
    if [[ -n $POLICY_BAK && -e $POLICY_BAK ]]; then
        mv -f "$POLICY_BAK" "$POLICY"
    elif ((POLICY_CREATED)); then
        rm -f "$POLICY"
    fi
    POLICY_BAK=""; POLICY_CREATED=0
}

daemon_pids() { # pids of any munged/slurmctld/slurmd/slurmstepd on the box
    local d path
    for d in /proc/[0-9]*; do
        path=$(readlink "$d/exe" 2>/dev/null || true)
        case ${path##*/} in munged|slurmctld*|slurmd*|slurmstepd*) echo "${d#/proc/}";; esac
    done
    return 0
}

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null 2>&1 ||
        skip "packages missing (${missing[*]}) and apt-get is unavailable"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local cand need_update=0
    for p in "${missing[@]}"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/{print $2}')
        [[ -z $cand || $cand == "(none)" ]] && need_update=1
    done
    if ((need_update)); then
        log "apt-get update"
        apt-get update -qq || die "apt-get update failed"
    fi
    # forbid service starts from maintainer scripts while installing
    local before
    before=$(daemon_pids | sort)
    if [[ -e $POLICY ]]; then
        POLICY_BAK=$POLICY.linflow-bak.$$
        cp -p "$POLICY" "$POLICY_BAK"
    else
        POLICY_CREATED=1
    fi
    trap restore_policy EXIT
    printf '#!/bin/sh\n# temporary, linflow tests/slurm/cluster.sh\nexit 101\n' >"$POLICY"
    chmod 0755 "$POLICY"
    local rc=0
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null || rc=$?
    restore_policy
    trap - EXIT
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (rc=$rc)"
    # anything the install started anyway is ours to stop
    local new
    new=$(comm -13 <(echo "$before") <(daemon_pids | sort) | tr '\n' ' ')
    if [[ -n ${new// /} ]]; then
        warn "package install started daemons ($new); stopping them"
        # shellcheck disable=SC2086
        terminate $new
    fi
}

# ------------------------------------------------------------------- config
write_conf() {
    local node cpus mem_mb margin tmp
    node=$(node_name)
    [[ -n $node ]] || die "cannot determine hostname"
    cpus=$(nproc)
    mem_mb=$(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo)
    margin=$((mem_mb / 20)); ((margin < 512)) && margin=512
    mem_mb=$((mem_mb - margin)); ((mem_mb < 256)) && mem_mb=256
    mkdir -p "$STATE_DIR"/{state,spool,log} /etc/slurm
    chmod 0755 "$STATE_DIR" "$STATE_DIR"/{state,spool,log}
    tmp=$(mktemp "$STATE_DIR/slurm.conf.XXXXXX")
    cat >"$tmp" <<EOF
$CONF_MARKER (state dir: $STATE_DIR)
ClusterName=linflow
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$PID_CTLD
SlurmdPidFile=$PID_SLURMD
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
SchedulerType=sched/backfill
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 0644 "$tmp"
    if [[ -e $SYS_CONF ]] && ! grep -qF "$CONF_MARKER" "$SYS_CONF"; then
        [[ -e $SYS_CONF.linflow-orig ]] || cp -p "$SYS_CONF" "$SYS_CONF.linflow-orig"
        warn "existing $SYS_CONF saved as $SYS_CONF.linflow-orig"
    fi
    cp -f "$tmp" "$SYS_CONF"
    mv -f "$tmp" "$STATE_DIR/slurm.conf"
}

# -------------------------------------------------------------------- munge
start_munge() {
    if pid_of_ours "$PID_MUNGED" munged >/dev/null && munge_works; then
        return 0
    fi
    rm -f "$PID_MUNGED"
    if munge_works; then
        log "a munged not started by this script is already serving; reusing it"
        return 0
    fi
    getent passwd munge >/dev/null || die "user 'munge' does not exist (munge package broken?)"
    install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    install -d -o munge -g munge -m 0755 /run/munge
    local key=/etc/munge/munge.key
    if [[ ! -s $key ]]; then
        log "creating munge key"
        if command -v mungekey >/dev/null 2>&1; then
            runuser -u munge -- mungekey --create --keyfile="$key" ||
                dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
        elif command -v create-munge-key >/dev/null 2>&1; then
            create-munge-key -f
        else
            dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$key"; chmod 0400 "$key"
    # stale socket/pid from a dead munged would make it refuse to start
    local run_pid
    run_pid=$(pid_of_ours /run/munge/munged.pid munged || true)
    if [[ -z $run_pid ]]; then
        rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    fi
    # munged daemonizes itself and only returns once it is ready
    if ! runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
        >"$LOG_DIR/munged.start.log" 2>&1 </dev/null; then
        cat "$LOG_DIR/munged.start.log" >&2 || true
        tail -n 20 /var/log/munge/munged.log >&2 2>/dev/null || true
        die "munged failed to start"
    fi
    for _ in $(seq 50); do
        run_pid=$(pid_of_ours /run/munge/munged.pid munged || true)
        [[ -n $run_pid ]] && break
        sleep 0.1
    done
    [[ -n $run_pid ]] || die "munged started but wrote no pidfile (/run/munge/munged.pid)"
    echo "$run_pid" >"$PID_MUNGED"
    munge_works || die "munged running (pid $run_pid) but munge -n | unmunge fails"
}

# -------------------------------------------------------------------- slurm
node_state() { timeout 10 sinfo -h -N -n "$(node_name)" -o '%T' 2>/dev/null | head -n1; }

healthy() {
    pid_of_ours "$PID_CTLD" slurmctld >/dev/null || return 1
    pid_of_ours "$PID_SLURMD" slurmd >/dev/null || return 1
    munge_works || return 1
    timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
    case $(node_state) in
        idle|mixed|allocated|completing) return 0 ;;
        *) return 1 ;;
    esac
}

show_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" "$LOG_DIR"/*.start.log; do
        [[ -s $f ]] || continue
        echo "----- tail $f" >&2
        tail -n 25 "$f" >&2
    done
}

start_daemon() { # name pidfile args...
    local name=$1 pidfile=$2; shift 2
    rm -f "$pidfile"
    if ! "/usr/sbin/$name" "$@" >"$LOG_DIR/$name.start.log" 2>&1 </dev/null; then
        show_logs; die "$name failed to start"
    fi
    for _ in $(seq 100); do
        pid_of_ours "$pidfile" "$name" >/dev/null && return 0
        sleep 0.1
    done
    show_logs; die "$name did not come up (no live pid in $pidfile)"
}

check_ports_free() {
    command -v ss >/dev/null 2>&1 || return 0
    local port
    for port in 6817 6818; do
        if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
            die "TCP port $port is already in use by a process this script did not start: $(ss -Hltnp "sport = :$port" 2>/dev/null | tr -s ' ')"
        fi
    done
}

cmd_up() {
    [[ $(id -u) -eq 0 ]] || skip "must run as root to install/start slurm and munge"
    [[ $STATE_DIR == /* && $STATE_DIR != *[[:space:]]* ]] ||
        die "LINFLOW_SLURM_DIR must be an absolute path without whitespace: '$STATE_DIR'"
    ensure_packages
    if [[ -r $SYS_CONF ]] && grep -qF "$CONF_MARKER (state dir: $STATE_DIR)" "$SYS_CONF" && healthy; then
        log "cluster already up and healthy"
        cmd_status || true
        return 0
    fi
    # partial / stale state: stop whatever of ours is still around, start fresh
    cmd_down --quiet
    slurmctld -V >/dev/null 2>&1 || die "slurmctld not runnable after install"
    write_conf
    start_munge
    check_ports_free
    local node t0=$SECONDS
    node=$(node_name)
    # -c: discard previously saved job/node state (fresh cluster every time)
    start_daemon slurmctld "$PID_CTLD" -c
    start_daemon slurmd "$PID_SLURMD" -c -N "$node"
    local deadline=$((SECONDS + UP_TIMEOUT)) st=""
    while :; do
        st=$(node_state || true)
        [[ $st == idle ]] && break
        if [[ $st == down* || $st == drain* ]]; then
            # ReturnToService=2 should handle it; nudge anyway
            timeout 10 scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
        fi
        pid_of_ours "$PID_CTLD" slurmctld >/dev/null || { show_logs; die "slurmctld died during startup"; }
        pid_of_ours "$PID_SLURMD" slurmd >/dev/null || { show_logs; die "slurmd died during startup"; }
        if ((SECONDS >= deadline)); then
            show_logs
            die "node '$node' not idle after ${UP_TIMEOUT}s (state: '${st:-?}')"
        fi
        sleep 0.5
    done
    local rem=$((deadline - SECONDS)); ((rem < 30)) && rem=30
    if ! timeout "$rem" srun -N1 true </dev/null; then
        show_logs; die "'srun -N1 true' failed"
    fi
    log "cluster up in $((SECONDS - t0))s"
    cmd_status
}

cmd_down() {
    local quiet=0
    [[ ${1:-} == --quiet ]] && quiet=1
    [[ $(id -u) -eq 0 ]] || skip "must run as root to stop slurm and munge"
    local ctld slurmd munged
    ctld=$(pid_of_ours "$PID_CTLD" slurmctld || true)
    slurmd=$(pid_of_ours "$PID_SLURMD" slurmd || true)
    munged=$(pid_of_ours "$PID_MUNGED" munged || true)
    if [[ -z $ctld$slurmd$munged ]] && [[ -z $(our_stepds "") ]]; then
        rm -f "$PID_CTLD" "$PID_SLURMD" "$PID_MUNGED"
        ((quiet)) || log "cluster is not running (nothing of ours alive)"
        return 0
    fi
    ((quiet)) || log "stopping cluster (slurmctld=${ctld:--} slurmd=${slurmd:--} munged=${munged:--})"
    local p ctld_kids="" ctld_exe shutdown_ok=0
    ctld_exe=$(readlink -f /usr/sbin/slurmctld 2>/dev/null || echo /usr/sbin/slurmctld)
    if [[ -n $ctld ]]; then ctld_kids=$(descendants "$ctld" | tr '\n' ' '); fi
    if [[ -n $ctld ]] && command -v squeue >/dev/null 2>&1; then
        local jobs
        jobs=$(timeout 10 squeue -h -o '%A' 2>/dev/null | tr '\n' ' ' || true)
        if [[ -n ${jobs// /} ]]; then
            # shellcheck disable=SC2086
            timeout 15 scancel $jobs >/dev/null 2>&1 || true
            local deadline=$((SECONDS + 10))
            while ((SECONDS < deadline)) &&
                [[ -n $(timeout 5 squeue -h -o '%A' 2>/dev/null || true) ]]; do
                sleep 0.5
            done
        fi
        if timeout 15 scontrol shutdown >/dev/null 2>&1; then shutdown_ok=1; fi
    fi
    # give daemons a chance to exit by themselves after `scontrol shutdown`
    if ((shutdown_ok)); then
        for p in $ctld $slurmd; do wait_gone 15 "$p" || true; done
    fi
    if [[ -n $slurmd ]]; then terminate "$slurmd"; fi
    # leftover slurmstepd (and their job processes) of our slurmd
    local stepds victims=()
    stepds=$(our_stepds "$slurmd" | sort -u)
    for p in $stepds; do
        mapfile -t -O "${#victims[@]}" victims < <(descendants "$p"; echo "$p")
    done
    if ((${#victims[@]})); then
        ((quiet)) || log "killing leftover slurmstepd/job processes: ${victims[*]}"
        # slurmstepd ignores SIGTERM, so do not wait long before KILL
        terminate -t 2 "${victims[@]}"
    fi
    if [[ -n $ctld ]]; then terminate "$ctld"; fi
    # slurmscriptd (child of slurmctld) normally exits with it; make sure
    for p in $ctld_kids; do
        if [[ $(readlink "/proc/$p/exe" 2>/dev/null || true) == "$ctld_exe" ]]; then
            terminate -t 3 "$p"
        fi
    done
    if [[ -n $munged ]]; then
        terminate "$munged"
        rm -f /run/munge/munged.pid
    fi
    rm -f "$PID_CTLD" "$PID_SLURMD" "$PID_MUNGED"
    # Daemons are reparented to PID 1 (they double-fork); wait briefly until
    # PID 1 has reaped the zombies so `ps` right after `down` is clean.
    local gone_deadline=$((SECONDS + 5))
    for p in $ctld $ctld_kids $slurmd $munged ${victims[@]+"${victims[@]}"}; do
        while [[ -e /proc/$p ]] && ((SECONDS < gone_deadline)); do sleep 0.1; done
    done
    ((quiet)) || log "cluster down"
    return 0
}

cmd_status() {
    local ok=0 name file pid
    echo "state dir: $STATE_DIR   config: $SYS_CONF"
    for name in munged slurmctld slurmd; do
        file=$STATE_DIR/$name.pid
        if pid=$(pid_of_ours "$file" "$name"); then
            printf '  %-10s running (pid %s)\n' "$name" "$pid"
        elif [[ $name == munged ]] && munge_works; then
            printf '  %-10s running (not started by this script)\n' "$name"
        else
            printf '  %-10s NOT running\n' "$name"; ok=1
        fi
    done
    if command -v sinfo >/dev/null 2>&1 && [[ -r $SYS_CONF ]]; then
        timeout 10 sinfo -N -o '%N %P %T %c %m' 2>&1 | sed 's/^/  /' || ok=1
    else
        echo "  sinfo unavailable"; ok=1
    fi
    ((ok == 0)) && healthy || ok=1
    if ((ok == 0)); then echo "status: HEALTHY"; else echo "status: NOT healthy"; fi
    return "$ok"
}

main() {
    (($# == 1)) || { usage; exit 2; }
    case $1 in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        -h|--help|help) usage; exit 0 ;;
        *) echo "$PROG: unknown subcommand '$1'" >&2; usage; exit 2 ;;
    esac
}

main "$@"
