// Spawning one rank per GPU, and refusing stray launcher ranks.
#include "gpulab/distributed/rank_spawner.h"

#include <cstdio>

#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/distributed/local_launcher.h"

namespace gpulab::distributed {

int spawn_gpu_ranks(const std::vector<std::string>& command) {
  GPULAB_CHECK(!command.empty(), ErrorKind::kInvalidArgument,
               "multi-gpu: no command line to start the ranks with");
  core::resolve_device(core::ExecutionEnvironment::kMultiGpu);  // fails clearly with no GPU
  const int gpus = core::cuda_device_count();
  std::vector<std::string> ranks = command;
  ranks.push_back("--env");
  ranks.push_back("parallel");
  const LaunchResult result = launch_local(ranks, LaunchOptions(gpus));
  if (result.exit_code != 0 && result.failed_rank >= 0) {
    std::fprintf(stderr, "gpulab: %s\n", result.headline(gpus).c_str());
  }
  return result.exit_code;
}

void refuse_launcher_ranks(const World& world, const std::string& environment) {
  const std::string by = world.launcher == "slurm" ? "srun (SLURM_PROCID, SLURM_NTASKS)"
                         : world.launcher == "mpi"
                             ? "mpirun (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE)"
                             : "gpulab launch or torchrun (RANK, WORLD_SIZE)";
  GPULAB_CHECK(!world.is_distributed(), ErrorKind::kInvalidArgument,
               "this process is rank {} of {} started by {}, but `execution_environment` is '{}': "
               "each rank would "
               "train alone into the same RUN_DIR; add `execution_environment` parallel to train "
               "them as one job",
               world.rank, world.size, by, environment);
}

}  // namespace gpulab::distributed
