// Starts N ranks of one command on this machine (torchrun-style variables),
// forwards signals, and when one rank fails stops the others and reports which
// rank failed and why; optionally restarts them all (they resume from the last
// checkpoint).
#pragma once

#include <string>
#include <vector>

#include "gpulab/core/options.h"

namespace gpulab::distributed {

struct LaunchOptions {
  explicit LaunchOptions(int processes) : processes_(processes) {}
  GPULAB_ARG(int, processes);
  // Restarts of the whole world after a failure; each restarted rank sees
  // GPULAB_RESTART_COUNT=k (k >= 1) and resumes from its run's checkpoint.
  GPULAB_ARG(int, max_restarts) = 0;
  GPULAB_ARG(std::string, master_addr) = "127.0.0.1";
  // 0: a free port is picked for each attempt.
  GPULAB_ARG(int, master_port) = 0;
  // After a failure, seconds the other ranks get to stop after SIGTERM before
  // SIGKILL.
  GPULAB_ARG(double, grace_seconds) = 10;
  // Prefix each line a rank writes on stderr with "[rank R] ".
  GPULAB_ARG(bool, prefix_stderr) = true;
};

struct LaunchResult {
  int exit_code = 0;     // 0 when every rank succeeded
  int failed_rank = -1;  // the first rank that failed in the last attempt
  std::string failure;   // "exit code 1: gpulab: error: ..." or "killed by signal 9 (SIGKILL)"
  // The rank the failed rank's error blames ("lost rank 1", "rank 1 failed:
  // ..."), -1 when none: a hung rank is not the first to exit, the rank that
  // gave up waiting for it is.
  int lost_rank = -1;
  int restarts = 0;

  // "rank 1 of 2 failed: ..." or, when another rank is to blame, "rank 1 of 2
  // failed or stopped answering; rank 0 reported: ...".
  std::string headline(int world_size) const;
};

// The rank an error line blames: N in "lost rank N" or ": rank N failed:",
// -1 when it names none other than `own_rank`.
int rank_blamed_in(const std::string& error, int own_rank);

// The line of a rank's last stderr lines that says why it failed: a usage
// error's line before CLI11's "Run with --help for more information.", else
// the last line containing "error", else the last line ("" for none).
std::string most_telling_line(const std::vector<std::string>& lines);

// Runs `command` (argv, looked up in PATH) as ranks 0..N-1 with RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// GPULAB_RESTART_COUNT and GPULAB_JOB_ID (this launch's identity) set. Blocks until the job ends.
// SIGINT/SIGTERM received meanwhile are forwarded to every rank. Throws Error(kInvalidArgument) for
// an empty command or N < 1.
LaunchResult launch_local(const std::vector<std::string>& command, const LaunchOptions& options);

// A TCP port free on this machine now (bound then released).
int free_tcp_port();

}  // namespace gpulab::distributed
