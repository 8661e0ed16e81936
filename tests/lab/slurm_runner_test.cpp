// The Slurm runner's pure parts: the sbatch script for cpu and gpu hardware,
// and squeue/scontrol/sbatch output (captured from slurm-wlm 22.05) parsed
// into job states and exit codes.
#include "gpulab/lab/slurm_runner.h"

#include <gtest/gtest.h>

#include "gpulab/core/error.h"

namespace gpulab::lab {
namespace {

LabSpec slurm_test_spec(const std::string& hardware) {
  return parse_lab_spec("name: tiny train\ncommand: [sh, -c, 'echo hello; exit 3']\n" + hardware,
                        "lab.yaml");
}

// `scontrol show job 1` of `sbatch --wrap 'echo hi; exit 3'` once it ended.
const char* const kSlurmFailedJob = R"(JobId=1 JobName=t1
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901759 Nice=0 Account=(null) QOS=(null)
   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0
   RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2026-12-03T13:50:24 EligibleTime=2026-12-03T13:50:24
   Partition=test AllocNode:Sid=localhost:12065
   WorkDir=/tmp/slurmexp
   StdOut=/tmp/slurmexp/o1
)";

// A job cancelled whose processes ignored SIGTERM (killed after KillWait).
const char* const kSlurmCancelledJob = R"(JobId=2 JobName=wrap
   JobState=CANCELLED Reason=None Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:9
)";

}  // namespace

TEST(SlurmRunnerTest, BatchScriptExecsTheSupervisorWithoutGresForCpu) {
  const std::string s = slurm_batch_script("6b11721d0460", slurm_test_spec(""), "/h/lab home",
                                           "/opt/gpulab/bin/gpulab");
  EXPECT_EQ(s.rfind("#!/bin/sh\n", 0), 0u) << s;
  EXPECT_NE(s.find("#SBATCH --job-name=tiny_train\n"), std::string::npos) << s;
  EXPECT_NE(s.find("#SBATCH --chdir=/h/lab home/executions/6b11721d0460\n"), std::string::npos)
      << s;
  EXPECT_NE(s.find("#SBATCH --output=/h/lab home/executions/6b11721d0460/slurm.out\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("#SBATCH --no-requeue\n"), std::string::npos) << s;
  EXPECT_EQ(s.find("--gres"), std::string::npos) << s;
  EXPECT_NE(s.find("export GPULAB_HOME='/h/lab home'\n"), std::string::npos) << s;
  // exec: the supervisor is the job step's process and gets scancel's signals.
  EXPECT_NE(s.find("\nexec '/opt/gpulab/bin/gpulab' lab supervise '6b11721d0460'\n"),
            std::string::npos)
      << s;
}

TEST(SlurmRunnerTest, BatchScriptAsksForTheSpecsGpus) {
  const std::string two = slurm_batch_script(
      "6b11721d0460", slurm_test_spec("hardware: {type: gpu, gpus: 2}\n"), "/h", "/bin/gpulab");
  EXPECT_NE(two.find("#SBATCH --gres=gpu:2\n"), std::string::npos) << two;
  const std::string one = slurm_batch_script(
      "6b11721d0460", slurm_test_spec("hardware: {type: gpu}\n"), "/h", "/bin/gpulab");
  EXPECT_NE(one.find("#SBATCH --gres=gpu:1\n"), std::string::npos) << one;
}

TEST(SlurmRunnerTest, BatchScriptNeverHoldsEnvValuesAndQuotesPaths) {
  setenv("SLURM_TEST_SECRET", "v4lue-never-written", 1);
  const LabSpec spec =
      parse_lab_spec("name: x\ncommand: [sleep, '1']\nenv: [SLURM_TEST_SECRET]\n", "lab.yaml");
  const std::string s = slurm_batch_script("0123456789ab", spec, "/h/it's", "/bin/gpulab");
  EXPECT_EQ(s.find("v4lue-never-written"), std::string::npos) << s;
  EXPECT_NE(s.find("export GPULAB_HOME='/h/it'\\''s'\n"), std::string::npos) << s;
  unsetenv("SLURM_TEST_SECRET");
}

TEST(SlurmRunnerTest, ParsesSbatchSqueueAndScontrolOutput) {
  EXPECT_EQ(parse_sbatch_job_id("42\n"), "42");
  EXPECT_EQ(parse_sbatch_job_id("sbatch: warning: something\n17;gpulabtest\n"), "17");
  EXPECT_THROW(parse_sbatch_job_id("sbatch: error: Batch job submission failed\n"), Error);

  EXPECT_EQ(parse_squeue_state("RUNNING\n").value_or(""), "RUNNING");
  EXPECT_EQ(parse_squeue_state("\n  COMPLETING \n").value_or(""), "COMPLETING");
  EXPECT_FALSE(parse_squeue_state("").has_value());

  const SlurmJobInfo failed = parse_scontrol_job(kSlurmFailedJob);
  EXPECT_TRUE(failed.exists);
  EXPECT_EQ(failed.state, "FAILED");
  EXPECT_EQ(failed.reason, "NonZeroExitCode");
  EXPECT_EQ(failed.exit_code_text, "3:0");
  EXPECT_EQ(failed.exit_code.value_or(-1), 3);
  const SlurmJobInfo cancelled = parse_scontrol_job(kSlurmCancelledJob);
  EXPECT_EQ(cancelled.state, "CANCELLED");
  EXPECT_EQ(cancelled.exit_code.value_or(-1), 128 + 9);  // signal 9
  EXPECT_FALSE(parse_scontrol_job("").exists);

  EXPECT_TRUE(slurm_job_unknown("slurm_load_jobs error: Invalid job id specified\n"));
  EXPECT_FALSE(slurm_job_unknown(
      "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"));
}

TEST(SlurmRunnerTest, LiveAndFinalJobStates) {
  for (const char* live : {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"}) {
    EXPECT_TRUE(slurm_state_is_live(live)) << live;
  }
  for (const char* final_state : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                                  "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}) {
    EXPECT_FALSE(slurm_state_is_live(final_state)) << final_state;
  }
}

}  // namespace gpulab::lab
