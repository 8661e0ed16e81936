// Who this process is in a data-parallel job: its rank, the world size, and
// where the ranks meet, read from whatever launcher started it.
#pragma once

#include <map>
#include <string>

namespace gpulab::distributed {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank on this machine: picks the GPU
  int local_size = 1;  // ranks on this machine
  int nodes = 1;
  // Rendezvous: rank 0 hosts a c10d TCPStore at master_addr:master_port.
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // "single", "torchrun" (RANK/WORLD_SIZE/...), "slurm" or "mpi".
  std::string launcher = "single";
  // The launcher's id of this job, the same on every rank and different for
  // concurrent jobs ("" when the launcher gives none): TORCHELASTIC_RUN_ID or
  // GPULAB_JOB_ID (set by gpulab launch), Slurm's "JOB.STEP", Open MPI's job
  // id. The rendezvous refuses a rank of another job.
  std::string job_id;

  bool is_distributed() const { return size > 1; }
  bool is_main() const { return rank == 0; }
  // "mpi job 1204879361 of 2 ranks": what every rank of the job agrees on.
  std::string job_identity() const;

  // The one place the launcher's variables are read (DESIGN.md). Precedence:
  // torchrun-style RANK/WORLD_SIZE, then Slurm (SLURM_PROCID, SLURM_NTASKS,
  // SLURM_LOCALID, master = the step's first node; only inside an srun step,
  // not in the sbatch script itself), then Open MPI
  // (OMPI_COMM_WORLD_*; the port derived from the job id, so concurrent
  // mpirun jobs on a node do not collide), else a single process.
  // MASTER_ADDR/MASTER_PORT override the master under every launcher. Throws
  // Error(kInvalidArgument) naming the variable when one is malformed or
  // inconsistent, or missing from a partial set (RANK without WORLD_SIZE).
  // Without a launcher's port (and MASTER_PORT), master_port is 29500.
  static World from_environment();
  // The same from an explicit variable map (testable).
  static World from_variables(const std::map<std::string, std::string>& vars);
};

// 127.x.x.x, ::1 or localhost: every rank must then be on this machine.
bool is_loopback_address(const std::string& host);

// The first host of a Slurm node list: "gpu[03-05,07],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);

// "2 CPU ranks on 1 node (Gloo)"-style description used in the progress header.
std::string describe_world(const World& world, const std::string& device_kind,
                           const std::string& backend);

}  // namespace gpulab::distributed
