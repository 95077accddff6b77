#!/usr/bin/env bash
# A real SLURM on this machine, for the cluster tests (tests/test_slurm*.py).
#   bash scripts/slurm.sh start    install (Debian packages) if missing, configure, start, wait for idle
#   bash scripts/slurm.sh stop     stop the daemons this script started (by their pid files)
#   bash scripts/slurm.sh status   exit 0 when the default node answers and is usable
#   bash scripts/slurm.sh conf     print the slurm.conf path (for SLURM_CONF)
# Two partitions. `debug` (the default) is this host as one plain node. `gpu` looks like a
# GPU cluster: nodes gpu1 and gpu2 with GPUS_PER_NODE GPUs each, declared as generic
# resources with a count and no device files, each node served by its own slurmd on this
# host (`slurmd -N <node>`, its own port, NodeAddr 127.0.0.1). No GPU is real: the tests
# train with gloo on the CPU. Needs root and apt-get (a CI machine, a throw-away VM);
# verified on Debian 12 with its packages (SLURM 22.05): start munged as the munge user,
# then slurmctld -c and slurmd -c (slurm.schedmd.com/quickstart_admin.html). State, spool,
# pids and logs live in $STYLEGAN_SLURM_DIR (default /tmp/stylegan-slurm); slurm.conf and
# gres.conf are installed where sinfo/sbatch/slurmd look for them.
set -euo pipefail

DIR=${STYLEGAN_SLURM_DIR:-/tmp/stylegan-slurm}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARK="# written by stylegan scripts/slurm.sh"
# Debian's packages (SLURM 22.05 on Debian 12); the commands that tell whether each is installed.
PACKAGES=(slurmctld slurmd slurm-client munge)
COMMANDS=(slurmctld slurmd sinfo munged)
# snakemake-executor-plugin-slurm (job_status_query.py): squeue status needs MinJobAge >= 3x the plugin's first-check delay
# (slurm/config.yaml sets 10 s; the plugin's default is 40 s), so keep finished jobs 10 min.
MIN_JOB_AGE=600
HOST=$(hostname -s)
GPU_NODES=(gpu1 gpu2)
GPUS_PER_NODE=2
SLURMD_PORT=6818  # SLURM's default, for this host's node; the GPU nodes take the next ones

die() { echo "slurm.sh: $*" >&2; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
slurmd_pid() { echo "$DIR/slurmd-$1.pid"; }  # SlurmdPidFile below, %n expanded

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

gpu_node_lines() {
    # One line per fake GPU node: this host under another name, reached on its own port.
    local cpus=$1 mem_mb=$2 port=$SLURMD_PORT node
    for node in "${GPU_NODES[@]}"; do
        port=$((port + 1))
        echo "NodeName=$node NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$port CPUs=$cpus" \
            "RealMemory=$mem_mb Gres=gpu:$GPUS_PER_NODE State=UNKNOWN"
    done
}

gres_lines() {
    # One gres.conf line per fake GPU node, after making its device links.
    local node i
    for node in "${GPU_NODES[@]}"; do
        mkdir -p "$DIR/dev/$node"
        for ((i = 0; i < GPUS_PER_NODE; i++)); do ln -sfn /dev/null "$DIR/dev/$node/nvidia$i"; done
        echo "NodeName=$node Name=gpu File=$DIR/dev/$node/nvidia[0-$((GPUS_PER_NODE - 1))]"
    done
}

write_conf() {
    local cpus mem_mb gpu_nodes
    cpus=$(nproc)
    # RealMemory must not exceed what slurmd measures, else the node drains: keep a 10% margin.
    # The GPU nodes share this memory; a quarter each (SLURM only books it).
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    gpu_nodes=$(IFS=,; echo "${GPU_NODES[*]}")
    for file in "$CONF" "$GRES_CONF"; do
        if [ -f "$file" ] && ! grep -qiF "scripts/slurm.sh" "$file"; then
            die "$file exists and is not ours; this machine already has a SLURM, use it"
        fi
    done
    mkdir -p "$DIR/state" /etc/slurm
    # slurm.conf (slurm.schedmd.com/slurm.conf.html): no cgroups, no accounting; addresses
    # pinned to 127.0.0.1 so a container's unresolvable host name does not matter. %n (the
    # node name) keeps the spool, pid and log files of the slurmd daemons apart.
    cat >"$DIR/slurm.conf" <<EOF
$MARK
ClusterName=stylegan
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd-%n.log
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
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 Port=$SLURMD_PORT CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
$(gpu_node_lines "$cpus" $((mem_mb / 4)))
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$gpu_nodes MaxTime=INFINITE State=UP
EOF
    # SLURM 22.05's slurmd drops GPUs without File= ("Removing file-less GPU"), so each
    # fake GPU is a link to /dev/null: a character device that SLURM books and hands out
    # (CUDA_VISIBLE_DEVICES, SLURM_GPUS_ON_NODE) and nothing uses.
    { echo "$MARK"; gres_lines; } >"$DIR/gres.conf"
    rm -f "$CONF" "$GRES_CONF"  # ours (checked above); an earlier run may have left links to them
    cp "$DIR/slurm.conf" "$CONF"
    cp "$DIR/gres.conf" "$GRES_CONF"
}

node_state() { sinfo -h -n "$1" -N -o %T 2>/dev/null | head -n1 || true; }

wait_idle() {
    # Waits for node $1 to be usable; a drained or down node is resumed once it answers.
    local node=$1 state=""
    for _ in $(seq 60); do
        state=$(node_state "$node")
        case $state in
            idle|mixed|allocated) echo "slurm.sh: node $node is $state"; return 0 ;;
            down*|drain*) scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 1
    done
    echo "slurm.sh: node $node not idle after 60 s (state: '${state:-no answer}'); " \
        "slurmctld.log ends: $(tail -n 3 "$DIR/slurmctld.log" 2>/dev/null)" >&2
    return 1
}

wait_nodes() {
    # This host's node is required; the GPU partition only warns, so the tests that need
    # it say why they skip (their own check) while the plain tests still run.
    wait_idle "$HOST" || die "the default node did not come up"
    for node in "${GPU_NODES[@]}"; do
        wait_idle "$node" || echo "slurm.sh: partition gpu is incomplete ($node); see $DIR/slurmd-$node.log" >&2
    done
}

all_alive() {
    local node
    alive "$DIR/slurmctld.pid" || return 1
    for node in "$HOST" "${GPU_NODES[@]}"; do alive "$(slurmd_pid "$node")" || return 1; done
}

start() {
    [ "$(id -u)" = 0 ] || die "needs root (it installs packages and runs slurmd as root)"
    install_packages
    mkdir -p "$DIR"
    start_munge
    if all_alive; then
        wait_nodes
        return
    fi
    # A throwaway test cluster: state left by an earlier one (another ClusterName,
    # stale jobs) would stop slurmctld, so each cold start begins clean (-c too).
    stop_daemons
    rm -rf "$DIR/state" "$DIR/spool"
    write_conf
    for node in "$HOST" "${GPU_NODES[@]}"; do mkdir -p "$DIR/spool/$node"; done
    slurmctld -c || die "slurmctld did not start: $(tail -n 3 "$DIR/slurmctld.log" 2>/dev/null)"
    slurmd -c -N "$HOST" || die "slurmd did not start: $(tail -n 3 "$DIR/slurmd-$HOST.log" 2>/dev/null)"
    for node in "${GPU_NODES[@]}"; do
        slurmd -c -N "$node" || echo "slurm.sh: slurmd -N $node did not start:" \
            "$(tail -n 3 "$DIR/slurmd-$node.log" 2>/dev/null)" >&2
    done
    wait_nodes
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

stop_daemons() {
    local file
    for file in "$DIR"/slurmd-*.pid "$DIR/slurmd.pid"; do stop_pid "$file"; done  # slurmd.pid: older runs
    stop_pid "$DIR/slurmctld.pid"
}

stop() {
    stop_daemons
    if [ -f "$DIR/munged.ours" ]; then
        stop_pid /run/munge/munged.pid
        rm -f "$DIR/munged.ours"
    fi
}

status() {
    sinfo -N -o "%N %P %T %c %m %G" || exit 1
    [[ $(node_state "$HOST") =~ ^(idle|mixed|allocated) ]]
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    conf) echo "$DIR/slurm.conf" ;;
    *) die "usage: bash scripts/slurm.sh start|stop|status|conf" ;;
esac
