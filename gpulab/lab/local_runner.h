// The local runner: a supervisor process (`gpulab lab supervise ID`) starts
// the lab's command in its own process group, writes its output to the log
// with timestamps, waits for it and records the result. Stopping, and
// reconciling executions whose supervisor died, act on that group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/lab/execution_store.h"

namespace gpulab::lab {

// Variables every command gets from the submitting environment (when set),
// besides the spec's `env` names: PATH, HOME, USER, LOGNAME, LANG, LC_ALL,
// TZ, TMPDIR, LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS,
// GPULAB_HOME, GPULAB_CPU_ALLOCATOR.
const std::vector<std::string>& base_environment_names();

// Starts `gpulab_binary lab supervise ID` detached from the caller (double
// fork + setsid: it survives the caller and is never its zombie) and returns
// its pid once exec succeeded. It inherits the caller's environment (the
// only place `env` values travel); the caller's SQLite connection is not
// used across the fork. Throws Error(kIo) when it could not start.
int64_t start_supervisor(const std::string& gpulab_binary, const std::string& id);

// The supervisor's body (runs in `gpulab lab supervise ID`): marks the
// execution running, starts its command with cwd outputs/ in a new process
// group, logs every output line as "2024-05-01T12:00:00.123Z line", waits,
// and records finished (exit 0), failed (exit code or signal) or stopped
// (a stop was requested, or the supervisor got SIGTERM/SIGINT). Returns the
// command's exit code (128 + N for signal N).
int supervise_execution(ExecutionStore& store, const std::string& id,
                        const std::string& gpulab_binary);

struct StopOptions {
  // Seconds between SIGTERM to the command's process group and SIGKILL.
  GPULAB_ARG(double, grace_s) = 10.0;
};

// Stops a live execution: SIGTERM to its process group, SIGKILL after the
// grace period; it ends as `stopped`. Returns false when it had already
// ended. Throws Error(kUnavailable) for an execution on another host,
// Error(kInvalidArgument) for one of another runner (see stop_lab_execution).
bool stop_execution(ExecutionStore& store, const std::string& id, const StopOptions& options = {});

// Executions on this host recorded as pending, fetching or running whose
// answerable process (Execution::pid) no longer exists become failed (or
// stopped when a stop was requested); their command's process group, if
// left, is killed. Returns the ids changed. Every `gpulab lab` command
// calls it first.
std::vector<std::string> reconcile_executions(ExecutionStore& store);

// The time now as the log writes it before each line: "2024-05-01T12:00:00.123Z" (UTC).
std::string log_timestamp();

// Whether process `pid` exists and is not a zombie.
bool process_alive(int64_t pid);

}  // namespace gpulab::lab
