// What `gpulab lab` (and later the REST server) does with an execution:
// submit a spec, re-run one, follow its log, list its outputs. The CLI and
// the server call these; they never touch the store's rows themselves.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/lab/execution_store.h"
#include "gpulab/lab/input_fetch.h"
#include "gpulab/lab/lab_spec.h"
#include "gpulab/lab/local_runner.h"

namespace gpulab::lab {

struct SubmitOptions {
  explicit SubmitOptions(std::string gpulab_binary) : gpulab_binary_(std::move(gpulab_binary)) {}
  // The gpulab program that runs gpulab commands and the supervisor: the
  // running one (/proc/self/exe) from the CLI.
  GPULAB_ARG(std::string, gpulab_binary);
  // "local" (a detached supervisor on this host) or "slurm" (an sbatch job
  // running the same supervisor: slurm_runner.h).
  GPULAB_ARG(std::string, runner) = "local";
  // Inputs fetched at once; s3 region, endpoint and credentials.
  GPULAB_ARG(int, fetch_threads) = 4;
#ifdef GPULAB_WITH_CURL
  GPULAB_ARG(data::S3Options, s3);
#endif
};

// Records a new execution of `spec` and starts it: checks that every `env`
// name is set and every mount is a folder (Error kInvalidArgument /
// kNotFound, before any row is written); writes the row (pending), its
// folder, spec.yaml and mounts/NAME symlinks; fetches the inputs (state
// fetching; a failure makes it failed with the URL named and starts
// nothing); then starts its supervisor, which marks it running. Under
// Slurm it is `pending` from sbatch until the job starts the supervisor;
// an sbatch refusal makes it failed (and throws nothing). Returns the row
// as it stands after the start (or after the failure: check `state`).
Execution submit_execution(ExecutionStore& store, const LabSpec& spec,
                           const SubmitOptions& options);

// Stops `id` with its runner's means: stop_execution (local) or
// stop_slurm_execution (scancel). Returns false when it had already ended.
bool stop_lab_execution(ExecutionStore& store, const std::string& id,
                        const StopOptions& options = {});

// reconcile_executions (local processes on this host) then
// reconcile_slurm_executions (jobs that squeue/scontrol say have ended or no
// longer know). Returns the ids changed. Every `gpulab lab` command calls it
// first.
std::vector<std::string> reconcile_lab_executions(ExecutionStore& store);

// The spec stored with execution `id` (HOME/executions/ID/spec.yaml).
LabSpec stored_spec(ExecutionStore& store, const std::string& id);

// Copies the log of `id` to `out`; with `follow`, keeps copying until the
// execution has ended and the log is drained, or `*cancel` becomes true.
// While following a Slurm execution it checks the job every 2 s
// (reconcile_slurm_execution), so a job that never ran ends the follow.
void copy_log(ExecutionStore& store, const std::string& id, std::FILE* out, bool follow,
              const std::atomic<bool>* cancel = nullptr);

struct OutputFile {
  std::string path;  // relative to outputs/
  int64_t bytes = 0;
};
// Every regular file under the execution's outputs/, sorted by path.
std::vector<OutputFile> list_outputs(ExecutionStore& store, const std::string& id);

}  // namespace gpulab::lab
