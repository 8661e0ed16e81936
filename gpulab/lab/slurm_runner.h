// The Slurm runner: an execution is one `sbatch` job whose batch script execs
// `gpulab lab supervise ID` inside the job step, so the log, the exit code and
// the final state are recorded by the local runner's supervisor (one code
// path). Job state comes from squeue and scontrol (sacct needs slurmdbd);
// stop is scancel; reconciliation fails executions whose job is gone.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "gpulab/lab/execution_store.h"
#include "gpulab/lab/lab_spec.h"
#include "gpulab/lab/local_runner.h"

namespace gpulab::lab {

// The batch script of execution `id` (written as HOME/executions/ID/job.sbatch):
//   #SBATCH --job-name=NAME (characters outside [A-Za-z0-9._-] become '_')
//   #SBATCH --chdir=DIR --output=DIR/slurm.out --open-mode=append
//   #SBATCH --ntasks=1 --no-requeue [--gres=gpu:N for `hardware: {type: gpu, gpus: N}`]
//   export GPULAB_HOME=HOME
//   exec GPULAB lab supervise ID
// The supervisor is the job step's main process (no fork away from it), so
// scancel's signals reach it. Values of the spec's `env` are not written:
// they travel in the job's environment (sbatch --export=ALL, the default).
std::string slurm_batch_script(const std::string& id, const LabSpec& spec, const std::string& home,
                               const std::string& gpulab_binary);

// What squeue and scontrol say about one job.
struct SlurmJobInfo {
  bool exists = false;         // false: Slurm no longer knows the job ("Invalid job id")
  std::string state;           // squeue %T / scontrol JobState: "PENDING", "RUNNING", "FAILED", …
  std::string reason;          // scontrol Reason ("None", "NonZeroExitCode", …); "" if unknown
  std::string exit_code_text;  // scontrol ExitCode "3:0" (code:signal); "" if unknown
  std::optional<int> exit_code;  // from exit_code_text: code, or 128 + signal when signalled
};

// Whether a Slurm job state can still change (PENDING, CONFIGURING, RUNNING,
// COMPLETING, SUSPENDED, REQUEUED, SIGNALING, STAGE_OUT, …); COMPLETED,
// FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, … are final.
bool slurm_state_is_live(const std::string& state);

// The job id printed by `sbatch --parsable` ("42" or "42;cluster"). Throws
// Error(kCorruptData) quoting `output` when it holds no id.
std::string parse_sbatch_job_id(const std::string& output);
// The state printed by `squeue -j ID -t all -h -o %T` (first non-empty line,
// trimmed); nullopt when empty.
std::optional<std::string> parse_squeue_state(const std::string& output);
// `scontrol show job ID` (one or several lines): JobState, Reason, ExitCode.
SlurmJobInfo parse_scontrol_job(const std::string& output);
// Whether a squeue/scontrol error says the job is unknown to Slurm (purged,
// or never existed), as opposed to Slurm being unreachable.
bool slurm_job_unknown(const std::string& error_output);

// Asks squeue for the job's state, then scontrol for its exit code and reason
// once it has ended. Throws Error(kUnavailable) with Slurm's message when
// Slurm cannot be asked (no squeue, no controller).
SlurmJobInfo query_slurm_job(const std::string& job_id);

// Writes HOME/executions/ID/job.sbatch and submits it with `sbatch
// --parsable`; returns the job id (the caller records it). Throws
// Error(kUnavailable) with sbatch's output when sbatch is missing or refuses.
std::string submit_slurm_job(ExecutionStore& store, const std::string& id, const LabSpec& spec,
                             const std::string& gpulab_binary);

// Stops a Slurm execution: scancel (Slurm sends SIGTERM to the supervisor and
// the command, SIGKILL after its KillWait); after `grace_s` seconds without a
// recorded result, `scancel --signal=KILL --full`. It ends `stopped`. A job
// not yet submitted (pending, no job id) is stopped at once. Returns false
// when it had already ended.
bool stop_slurm_execution(ExecutionStore& store, const std::string& id,
                          const StopOptions& options = {});

// One live Slurm execution checked against Slurm: when its job has ended (or
// Slurm no longer knows it) and no result was recorded, it becomes failed
// (stopped when a stop was requested) with the job's state and exit code in
// the message. An execution without a job id is checked by its submitting
// process on this host. Slurm unreachable: nothing changes. Returns whether
// the row changed.
bool reconcile_slurm_execution(ExecutionStore& store, const Execution& e);
// reconcile_slurm_execution for every pending, fetching or running Slurm
// execution; returns the ids changed.
std::vector<std::string> reconcile_slurm_executions(ExecutionStore& store);

}  // namespace gpulab::lab
