#!/usr/bin/env bash
# Starts a one-node Slurm cluster (munged, slurmctld, slurmd) under DIR, for
# tests that launch ranks with srun. Prints the SLURM_CONF path when the node
# is up. Stop it with: slurm_cluster.sh stop DIR. Needs root (slurmd).
set -euo pipefail
action=${1:?usage: slurm_cluster.sh start|stop DIR}
dir=${2:?usage: slurm_cluster.sh start|stop DIR}
if [ "$action" = stop ]; then
  for p in slurmd slurmctld munged; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  exit 0
fi
mkdir -p "$dir"/{state,spool,munge,log}
host=$(hostname -s)
cpus=$(nproc)
# munge: a fresh key and socket of our own, so no system service is needed.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$dir/munge/munge.key"
chmod 700 "$dir/munge"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
port_base=$(( 17000 + RANDOM % 20000 ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=gpulabtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port_base
SlurmdPort=$(( port_base + 1 ))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -c -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$host"
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm_cluster.sh: the node did not become idle; logs in $dir/log" >&2
sinfo >&2 || true
tail -5 "$dir"/log/*.log >&2 || true
exit 1
