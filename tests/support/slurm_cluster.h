// A one-node Slurm cluster (munged, slurmctld, slurmd) for tests, started by
// tests/support/slurm_cluster.sh under a folder of the test's and stopped (by
// its pid files) when destroyed. Needs root and Debian's slurm-wlm and munge.
#pragma once

#include <string>

#include "tests/support/test_util.h"

namespace gpulab::testing {

class SlurmCluster {
 public:
  // Starts the cluster under `dir`; check ok() (output() says why not).
  explicit SlurmCluster(std::string dir) : dir_(std::move(dir)) {
    const auto missing = run_shell("command -v sbatch && command -v slurmd && command -v munged");
    if (missing.exit_code != 0) {
      output_ =
          "sbatch, slurmd and munged (Debian's slurm-wlm, munge) are needed; "
          "scripts/install-deps.sh installs them";
      return;
    }
    const auto up = run_shell(script() + " start '" + dir_ + "'");
    ok_ = up.exit_code == 0;
    output_ = up.output;
  }
  ~SlurmCluster() { run_shell(script() + " stop '" + dir_ + "'"); }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& output() const { return output_; }
  // "SLURM_CONF='DIR/slurm.conf'": prefix for shell commands that use it.
  std::string env() const { return "SLURM_CONF='" + dir_ + "/slurm.conf'"; }

 private:
  static std::string script() {
    return std::string("'") + GPULAB_SOURCE_DIR + "/tests/support/slurm_cluster.sh'";
  }
  std::string dir_;
  bool ok_ = false;
  std::string output_;
};

}  // namespace gpulab::testing
