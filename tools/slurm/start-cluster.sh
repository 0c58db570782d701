#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine (slurmctld + slurmd + munge from Debian's
# packages), for tests/slurm_e2e.rs and for trying `cargo xtask slurm` without a cluster.
#
#   sudo tools/slurm/start-cluster.sh          # installs the packages if missing, configures, starts
#   sudo tools/slurm/start-cluster.sh stop     # stops the daemons
#
# One node (this host) with all its CPUs, one partition `atlas` (the default), no accounting,
# no cgroups (proctrack/linuxproc, task/none: works in containers). Idempotent: a second call
# with the daemons up only waits for the node to be idle.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
HOST="$(hostname -s)"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"

if [ "${1:-}" = stop ]; then
  $SUDO pkill -x slurmd || true
  $SUDO pkill -x slurmctld || true
  $SUDO pkill -x munged || true
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm munge >/dev/null
fi

# munge: a key, then the daemon (as the munge user when it exists).
$SUDO mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
  $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
if id munge >/dev/null 2>&1; then
  $SUDO chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
  $SUDO chmod 0700 /etc/munge /var/log/munge /var/lib/munge
  $SUDO chmod 0755 /run/munge
  $SUDO chmod 0400 /etc/munge/munge.key
fi
if ! pgrep -x munged >/dev/null; then
  if id munge >/dev/null 2>&1; then
    $SUDO runuser -u munge -- /usr/sbin/munged
  else
    $SUDO /usr/sbin/munged --force
  fi
fi

CPUS="$(nproc)"
MEM_MB="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))"
$SUDO mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
$SUDO tee "$CONF" >/dev/null <<CONF
# Written by clip-atlas tools/slurm/start-cluster.sh: a single-node test cluster.
ClusterName=atlas
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=atlas Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

$SUDO rm -f "$CONF_DIR/cgroup.conf"

pgrep -x slurmctld >/dev/null || $SUDO slurmctld
pgrep -x slurmd >/dev/null || $SUDO slurmd

for _ in $(seq 1 60); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "the Slurm node did not come up; logs:" >&2
$SUDO tail -n 30 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
