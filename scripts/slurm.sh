#!/usr/bin/env bash
# A real one-node SLURM on this machine, for the cluster tests (tests/test_slurm.py).
#   bash scripts/slurm.sh start    install (Debian packages) if missing, configure, start, wait for idle
#   bash scripts/slurm.sh stop     stop the daemons this script started (by their pid files)
#   bash scripts/slurm.sh status   exit 0 when the node answers and is usable
#   bash scripts/slurm.sh conf     print the slurm.conf path (for SLURM_CONF)
# Needs root and apt-get (a CI machine, a throw-away VM); verified on Debian 12 with its
# packages (SLURM 22.05): start munged as the munge user, then slurmctld -c and slurmd -c
# (slurm.schedmd.com/quickstart_admin.html). State, spool, pids and logs live in $STYLEGAN_SLURM_DIR
# (default /tmp/stylegan-slurm); slurm.conf is installed where sinfo/sbatch look for it.
set -euo pipefail

DIR=${STYLEGAN_SLURM_DIR:-/tmp/stylegan-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by stylegan scripts/slurm.sh"
# Debian's packages (SLURM 22.05 on Debian 12); the commands that tell whether each is installed.
PACKAGES=(slurmctld slurmd slurm-client munge)
COMMANDS=(slurmctld slurmd sinfo munged)
# snakemake-executor-plugin-slurm (job_status_query.py): squeue status needs MinJobAge >= 3x the plugin's first-check delay
# (slurm/config.yaml sets 10 s; the plugin's default is 40 s), so keep finished jobs 10 min.
MIN_JOB_AGE=600

die() { echo "slurm.sh: $*" >&2; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    local missing=()
    for i in "${!COMMANDS[@]}"; do
        command -v "${COMMANDS[$i]}" >/dev/null || missing+=("${PACKAGES[$i]}")
    done
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" = 0 ] || die "needs root to install ${missing[*]}"
    command -v apt-get >/dev/null || die "needs apt-get to install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when an install from the present ones fails.
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    [ -f /etc/munge/munge.key ] || mungekey -c
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- munged
    touch "$DIR/munged.ours"  # stop only a munged this script started
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.5
    done
    die "munged does not answer (munge -n | unmunge)"
}

write_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # RealMemory must not exceed what slurmd measures, else the node drains: keep a 10% margin.
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    if [ -f "$CONF" ] && ! grep -qiF "scripts/slurm.sh" "$CONF"; then
        die "$CONF exists and is not ours; this machine already has a SLURM, use it"
    fi
    mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm
    # slurm.conf (slurm.schedmd.com/slurm.conf.html): one node, no cgroups, no accounting; addresses pinned to
    # 127.0.0.1 so a container's unresolvable host name does not matter.
    cat >"$DIR/slurm.conf" <<EOF
$MARK
ClusterName=stylegan
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    rm -f "$CONF"  # ours (checked above); an earlier run may have left a link to it
    cp "$DIR/slurm.conf" "$CONF"
}

wait_idle() {
    local state=""
    for _ in $(seq 60); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
        case $state in
            idle|mixed|allocated) echo "slurm.sh: node $(hostname -s) is $state"; return ;;
            down*|drain*) scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 1
    done
    die "node not idle after 60 s (state: '${state:-no answer}'); slurmctld.log ends: $(tail -n 3 "$DIR/slurmctld.log" 2>/dev/null)"
}

start() {
    [ "$(id -u)" = 0 ] || die "needs root (it installs packages and runs slurmd as root)"
    install_packages
    mkdir -p "$DIR"
    start_munge
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        wait_idle
        return
    fi
    # A throwaway test cluster: state left by an earlier one (another ClusterName,
    # stale jobs) would stop slurmctld, so each cold start begins clean (-c too).
    stop_pid "$DIR/slurmd.pid"
    stop_pid "$DIR/slurmctld.pid"
    rm -rf "$DIR/state" "$DIR/spool"
    write_conf
    slurmctld -c || die "slurmctld did not start: $(tail -n 3 "$DIR/slurmctld.log" 2>/dev/null)"
    slurmd -c || die "slurmd did not start: $(tail -n 3 "$DIR/slurmd.log" 2>/dev/null)"
    wait_idle
}

stop_pid() {
    local file=$1
    alive "$file" || return 0
    local pid
    pid=$(cat "$file")
    kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    stop_pid "$DIR/slurmd.pid"
    stop_pid "$DIR/slurmctld.pid"
    if [ -f "$DIR/munged.ours" ]; then
        stop_pid /run/munge/munged.pid
        rm -f "$DIR/munged.ours"
    fi
}

status() {
    sinfo -N -o "%N %T %c %m" || exit 1
    sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    conf) echo "$DIR/slurm.conf" ;;
    *) die "usage: bash scripts/slurm.sh start|stop|status|conf" ;;
esac
