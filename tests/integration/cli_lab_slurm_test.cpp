// `gpulab lab run --runner slurm` against a real one-node Slurm cluster that
// the suite starts and stops itself: exit codes and logs, a gpu spec refused
// by a cluster without GPUs, lab stop through scancel, a scancel behind the
// lab's back, and a job whose supervisor died reconciled as failed.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "tests/support/slurm_cluster.h"
#include "tests/support/test_util.h"

namespace gpulab {

// Not in an anonymous namespace: the TEST_F classes derive from it.
class CliLabSlurmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    cluster_ = new testing::SlurmCluster(*dir_ / "slurm");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->ok()) << cluster_->output(); }

  // `gpulab ARGS` with GPULAB_HOME and SLURM_CONF set.
  testing::CommandResult lab(const std::vector<std::string>& args) {
    std::string command =
        cluster_->env() + " GPULAB_HOME='" + home() + "' '" + testing::gpulab_binary() + "'";
    for (const auto& a : args) command += " '" + a + "'";
    return testing::run_shell(command);
  }
  testing::CommandResult slurm(const std::string& command_line) {
    return testing::run_shell(cluster_->env() + " " + command_line);
  }
  nlohmann::json show(const std::string& id) {
    const auto r = lab({"lab", "show", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output.substr(r.output.find('{')));
  }
  std::string spec(const std::string& name, const std::string& text) {
    const std::string path = tmp_ / (name + ".yaml");
    testing::write_bytes(path, "name: " + name + "\n" + text);
    return path;
  }
  // The id `lab run --detach` prints last.
  static std::string detached_id(const testing::CommandResult& r) {
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out.substr(out.rfind('\n') + 1);
  }
  bool wait_for(const std::function<bool()>& done, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string home() const { return tmp_ / "home"; }

  static testing::TempDir* dir_;
  static testing::SlurmCluster* cluster_;
  testing::TempDir tmp_;
};

testing::TempDir* CliLabSlurmTest::dir_ = nullptr;
testing::SlurmCluster* CliLabSlurmTest::cluster_ = nullptr;

TEST_F(CliLabSlurmTest, ProgramsEndFinishedOrFailedWithTheirExitCodeAndLog) {
  auto r = lab({"lab", "run", spec("fails", "command: [sh, -c, 'echo hello; exit 3']\n"),
                "--runner", "slurm"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("Z hello\n"), std::string::npos) << r.output;
  const auto listed = lab({"lab", "list", "--json", "--limit", "1"});
  const std::string id =
      nlohmann::json::parse(listed.output.substr(listed.output.find('{')))["executions"][0]["id"];
  auto e = show(id);
  EXPECT_EQ(e["state"], "failed");
  EXPECT_EQ(e["exit_code"], 3);
  EXPECT_EQ(e["runner"], "slurm");
  const std::string job = e["job_id"];
  ASSERT_FALSE(job.empty()) << e.dump();
  const std::string dir = home() + "/executions/" + id;
  const std::string log = core::read_file(dir + "/log");
  EXPECT_NE(log.find("Z [gpulab] execution " + id + " submitted as Slurm job " + job),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("Z [gpulab] execution " + id + " failed: exit code 3"), std::string::npos)
      << log;
  EXPECT_NE(core::read_file(dir + "/job.sbatch").find("lab supervise '" + id + "'"),
            std::string::npos);
  // The job ran the supervisor, whose exit code is the command's.
  const auto job_info = slurm("scontrol show job " + job);
  EXPECT_NE(job_info.output.find("JobName=fails"), std::string::npos) << job_info.output;
  EXPECT_NE(job_info.output.find("ExitCode=3:0"), std::string::npos) << job_info.output;

  r = lab({"lab", "run", spec("writes", "command: [sh, -c, 'echo out > result.txt']\n"), "--runner",
           "slurm", "--detach"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ok = detached_id(r);
  ASSERT_TRUE(wait_for([&] { return show(ok)["state"] == "finished"; }, 10)) << show(ok).dump();
  EXPECT_EQ(show(ok)["exit_code"], 0);
  EXPECT_EQ(core::read_file(home() + "/executions/" + ok + "/outputs/result.txt"), "out\n");

  // `hardware: gpu` asks for --gres=gpu:1, which this cluster has none of.
  r = lab({"lab", "run", spec("gpu", "command: [sh, -c, 'exit 0']\nhardware: {type: gpu}\n"),
           "--runner", "slurm"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("submitting to Slurm failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("gres"), std::string::npos) << r.output;
}

TEST_F(CliLabSlurmTest, StopCancelsTheJobAndAScancelBehindTheLabsBackEndsItStopped) {
  const std::string sleeper = spec("sleeper", "command: [sh, -c, 'echo up; sleep 60']\n");
  auto r = lab({"lab", "run", sleeper, "--runner", "slurm", "--detach"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string id = detached_id(r);
  ASSERT_TRUE(wait_for([&] { return show(id)["state"] == "running"; }, 10)) << show(id).dump();
  const std::string job = show(id)["job_id"];
  const auto t0 = std::chrono::steady_clock::now();
  const auto stop = lab({"lab", "stop", id, "--grace", "5"});
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  EXPECT_NE(stop.output.find(id + " stopped"), std::string::npos) << stop.output;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 8.0);
  EXPECT_EQ(show(id)["state"], "stopped");
  EXPECT_TRUE(wait_for(
      [&] { return slurm("squeue -j " + job + " -t all -h -o %T").output == "CANCELLED\n"; }, 10));
  EXPECT_NE(core::read_file(home() + "/executions/" + id + "/log").find("Z up\n"),
            std::string::npos);

  // scancel without the lab: the supervisor gets SIGTERM and records `stopped`.
  r = lab({"lab", "run", sleeper, "--runner", "slurm", "--detach"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string other = detached_id(r);
  ASSERT_TRUE(wait_for([&] { return show(other)["state"] == "running"; }, 10));
  EXPECT_EQ(slurm("scancel " + show(other)["job_id"].get<std::string>()).exit_code, 0);
  EXPECT_TRUE(wait_for([&] { return show(other)["state"] == "stopped"; }, 10))
      << show(other).dump();
}

TEST_F(CliLabSlurmTest, AJobWhoseSupervisorDiedIsReconciledAsFailed) {
  auto r = lab(
      {"lab", "run", spec("orphan", "command: [sleep, '60']\n"), "--runner", "slurm", "--detach"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string id = detached_id(r);
  ASSERT_TRUE(wait_for([&] { return show(id)["state"] == "running"; }, 10)) << show(id).dump();
  const auto e = show(id);
  const std::string job = e["job_id"];
  // SIGKILL: the supervisor (the job's batch step, on this one node) cannot
  // record anything; Slurm then ends the job and kills what is left.
  ASSERT_EQ(::kill(static_cast<pid_t>(e["pid"].get<int64_t>()), SIGKILL), 0);
  ASSERT_TRUE(wait_for(
      [&] {
        const auto state = slurm("squeue -j " + job + " -t all -h -o %T").output;
        return state != "RUNNING\n" && state != "COMPLETING\n";
      },
      15));
  const auto list = lab({"lab", "list"});
  EXPECT_NE(list.output.find("execution " + id + " is now failed"), std::string::npos)
      << list.output;
  const auto after = show(id);
  EXPECT_EQ(after["state"], "failed");
  const std::string message = after["message"];
  EXPECT_NE(message.find("its Slurm job " + job + " ended"), std::string::npos) << message;
  EXPECT_NE(message.find("without recording a result"), std::string::npos) << message;
  EXPECT_EQ(after["exit_code"], 128 + SIGKILL) << after.dump();
}

}  // namespace gpulab
