// A training run from its spec: the one entry the CLI and labs call. The
// spec (flags, --config and spec.yaml layered by the CLI; a lab's parameters)
// becomes the initial weights and network, the options, the world of ranks,
// RUN_DIR, the task and its data, then the trainer, which writes
// history.jsonl, checkpoints, model.safetensors and summary.json.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/core/log.h"
#include "gpulab/core/options.h"
#include "gpulab/data/data_path.h"
#include "gpulab/train/fit_result.h"

namespace gpulab::train {

// A flag that, becoming true, asks the run to stop (a SIGINT handler's).
using StopFlag = const std::atomic<bool>*;

struct TrainRunOptions {
  explicit TrainRunOptions(std::string run_dir) : run_dir_(std::move(run_dir)) {}
  GPULAB_ARG(std::string, run_dir);
  // Continue RUN_DIR from its last checkpoint.
  GPULAB_ARG(bool, resume) = false;
  // Becoming true (a SIGINT handler) stops training after the current step,
  // with a checkpoint.
  GPULAB_ARG(StopFlag, stop_flag) = nullptr;
  // Remote data access and caches, which the application fills.
  GPULAB_ARG(data::RemoteAccess, remote);
  // Where the spec's options came from, named in errors ("flags", a file).
  GPULAB_ARG(std::string, origin) = "flags";
  // This process's command line: with execution environment multi-gpu it is
  // started again once per GPU as the ranks of the job.
  GPULAB_ARG(std::vector<std::string>, command_line);
  // What was found before training (rank 0 of a verbose run writes it).
  GPULAB_ARG(core::Log, log);
};

struct TrainRunResult {
  FitResult fit;        // this rank's (rank 0's is the job's)
  int rank = 0;         // this process's rank in the job
  bool verbose = true;  // the run's resolved verbose option
  // multi-gpu started from a shell: the ranks' launcher ran the job and
  // returned this exit code; `fit` is empty.
  int spawned_exit_code = -1;
  bool spawned() const { return spawned_exit_code >= 0; }
};

// Runs the spec: {task, data, val_data, val_limit, model, model_options,
// task_options, data_options, options, weights, num_classes, ...}. Data
// parallel runs read their rank from distributed::World::from_environment().
// Throws Error(kInvalidArgument) for a bad spec (nothing in RUN_DIR is
// written then), the data's and the trainer's errors otherwise; a rank's
// failure is announced to the others.
TrainRunResult run_training(nlohmann::json spec, const TrainRunOptions& options);

}  // namespace gpulab::train
