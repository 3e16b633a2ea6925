#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the SLURM executor's tests (test/lab/slurm*.test.ts) and
# for trying `tlab run --executor slurm` without a cluster. Installs Debian's slurm-wlm and munge when missing,
# writes a slurm.conf for this host (127.0.0.1, select/cons_tres, proctrack/linuxproc, task/none) with its state
# and spool folders under one temporary folder, starts munged (as the munge user), slurmctld and slurmd, and waits
# until sinfo shows the node idle. Idempotent: when the cluster is already up it only prints its settings.
#
#   bash scripts/slurm-local.sh [start]   start (or find) the cluster; stdout: export SLURM_CONF=<its slurm.conf>
#   bash scripts/slurm-local.sh stop      stop the daemons this script started
#   bash scripts/slurm-local.sh status    exit 0 when the node is up and idle
#
# Exit codes: 0 up; 2 the cluster cannot run here (not root and no sudo, no apt-get to install SLURM): tests skip
# on 2 and say why; 1 anything else (a daemon that does not come up): tests fail.
# TLAB_SLURM_DIR sets the folder (default ${TMPDIR:-/tmp}/tlab-slurm); TLAB_SLURM_CPUS the CPUs the node offers.
set -euo pipefail

DIR="${TLAB_SLURM_DIR:-${TMPDIR:-/tmp}/tlab-slurm}"
CONF="$DIR/slurm.conf"
ACTION="${1:-start}"
export SLURM_CONF="$CONF"

say() { echo "slurm-local: $*" >&2; }
cannot() {
  say "$*"
  exit 2
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    [ "$ACTION" = "status" ] || cannot "needs root (or passwordless sudo) to start munged, slurmctld and slurmd"
  fi
fi

alive() { [ -f "$1" ] && $SUDO kill -0 "$(cat "$1")" 2>/dev/null; }

node_idle() {
  [ -f "$CONF" ] || return 1
  local state
  state="$(timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)"
  [ "$state" = "idle" ] || [ "$state" = "mixed" ] || [ "$state" = "allocated" ]
}

stop_cluster() {
  for d in slurmd slurmctld munged; do
    if alive "$DIR/$d.pid"; then
      $SUDO kill "$(cat "$DIR/$d.pid")" || true
      say "stopped $d"
    fi
  done
  rm -f "$DIR/munged.pid"
}

case "$ACTION" in
  stop)
    stop_cluster
    exit 0
    ;;
  status)
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && node_idle; then exit 0; fi
    exit 1
    ;;
  start) ;;
  *)
    say "unknown action '$ACTION'; valid: start, stop, status"
    exit 1
    ;;
esac

if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && node_idle; then
  echo "export SLURM_CONF=$CONF"
  exit 0
fi

# Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
  ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || cannot "SLURM is not installed and apt-get is not available to install slurm-wlm and munge"
  say "installing Debian's slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >&2 || cannot "apt-get update failed (no package mirror reachable?)"
  $SUDO apt-get install -y -q --no-install-recommends slurm-wlm munge >&2 ||
    cannot "apt-get install slurm-wlm munge failed"
fi

# A cluster that is not up starts clean: jobs of an earlier session (whose folders may be gone) are not recovered.
if ! alive "$DIR/slurmctld.pid" && ! alive "$DIR/slurmd.pid"; then rm -rf "$DIR/state" "$DIR/spool"; fi
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"

# munge: the credential daemon both slurm daemons and every client need, running as the munge user.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  $SUDO install -d -o munge -g munge -m 0755 /run/munge
  $SUDO install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    $SUDO mungekey --create --keyfile=/etc/munge/munge.key
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 0400 /etc/munge/munge.key
  fi
  # --force: a socket or pid file left by a munged that was killed does not stop a new one.
  $SUDO runuser -u munge -- /usr/sbin/munged --force --pid-file=/run/munge/munged.pid
  $SUDO cp /run/munge/munged.pid "$DIR/munged.pid"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || {
    say "munged did not start (see /var/log/munge/munged.log)"
    exit 1
  }
fi

# slurm.conf: this host at 127.0.0.1, everything the daemons keep under $DIR.
HOST="$(hostname -s)"
NODE="$(slurmd -C | head -1)"
CPUS="${TLAB_SLURM_CPUS:-$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$NODE")}"
MEMORY="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE")"
cat >"$CONF.tmp" <<EOF
# Written by scripts/slurm-local.sh: a single-node cluster on $HOST for transferlab's tests.
ClusterName=tlab-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# Jobs stay visible to squeue for 10 minutes after they end (there is no accounting database for sacct).
MinJobAge=600
# Seconds between SIGTERM and SIGKILL when a job is cancelled or requeued.
KillWait=10
MaxArraySize=1001
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"

if ! alive "$DIR/slurmctld.pid"; then
  $SUDO env SLURM_CONF="$CONF" setsid slurmctld -f "$CONF" </dev/null >>"$DIR/log/slurmctld.out" 2>&1
fi
if ! alive "$DIR/slurmd.pid"; then
  $SUDO env SLURM_CONF="$CONF" setsid slurmd -f "$CONF" </dev/null >>"$DIR/log/slurmd.out" 2>&1
fi

for _ in $(seq 120); do
  if node_idle; then break; fi
  # A node left DOWN or DRAIN by an earlier run comes back.
  state="$(timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)"
  case "$state" in down* | drain* | drained*) $SUDO env SLURM_CONF="$CONF" scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;; esac
  sleep 0.5
done
if ! node_idle; then
  say "the node did not become idle within 60 s; logs: $DIR/log/slurmctld.log, $DIR/log/slurmd.log"
  sinfo -N >&2 || true
  exit 1
fi
say "cluster up: node $HOST ($CPUS CPUs), partition debug; stop it with: bash scripts/slurm-local.sh stop"
echo "export SLURM_CONF=$CONF"
