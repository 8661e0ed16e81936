// The multi-gpu execution environment from a plain shell: the command is
// started again once per GPU of this machine, as the ranks of one job.
#pragma once

#include <string>
#include <vector>

#include "gpulab/distributed/world.h"

namespace gpulab::distributed {

// Runs `command` (argv of this process) once per local GPU with
// "--env parallel" appended and torchrun-style rank variables set
// (launch_local); returns the job's exit code, writing the failed rank's
// headline to stderr. Throws Error(kUnavailable) when there is no GPU and
// Error(kInvalidArgument) for an empty command.
int spawn_gpu_ranks(const std::vector<std::string>& command);

// A rank of a launcher (gpulab launch, mpirun, srun, torchrun) run without
// the parallel execution environment would train alone, every rank into the
// same RUN_DIR: throws Error(kInvalidArgument) naming the launcher when
// `world` (World::from_environment()) is distributed.
void refuse_launcher_ranks(const World& world, const std::string& environment);

}  // namespace gpulab::distributed
