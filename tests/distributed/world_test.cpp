// World::from_variables: each launcher's variables, precedence and bad values.
#include <gtest/gtest.h>

#include "gpulab/core/error.h"
#include "gpulab/distributed/world.h"

namespace gpulab::distributed {
namespace {

TEST(WorldTest, NoLauncherIsOneProcess) {
  const World w = World::from_variables({{"HOME", "/root"}});
  EXPECT_EQ(w.size, 1);
  EXPECT_EQ(w.rank, 0);
  EXPECT_EQ(w.launcher, "single");
  EXPECT_FALSE(w.is_distributed());
}

TEST(WorldTest, ReadsTorchrunVariables) {
  const World w = World::from_variables({{"RANK", "3"},
                                         {"WORLD_SIZE", "8"},
                                         {"LOCAL_RANK", "1"},
                                         {"LOCAL_WORLD_SIZE", "2"},
                                         {"MASTER_ADDR", "node0"},
                                         {"MASTER_PORT", "1234"}});
  EXPECT_EQ(w.launcher, "torchrun");
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.nodes, 4);
  EXPECT_EQ(w.master_addr, "node0");
  EXPECT_EQ(w.master_port, 1234);
}

TEST(WorldTest, ReadsSlurmVariablesAndTakesTheFirstNodeAsMaster) {
  const World w = World::from_variables({{"SLURM_PROCID", "5"},
                                         {"SLURM_NTASKS", "8"},
                                         {"SLURM_LOCALID", "1"},
                                         {"SLURM_NNODES", "2"},
                                         {"SLURM_JOB_ID", "4711"},
                                         {"SLURM_STEP_ID", "0"},
                                         {"SLURM_STEP_NODELIST", "gpu[07-08]"}});
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.rank, 5);
  EXPECT_EQ(w.size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.nodes, 2);
  EXPECT_EQ(w.master_addr, "gpu07");
  EXPECT_EQ(w.master_port, 20000 + 4711 % 10000);
}

TEST(WorldTest, AnSbatchScriptIsNotASlurmRank) {
  // sbatch -n 2 runs its script once with the job's task count; srun makes
  // the ranks, each in a step.
  const std::map<std::string, std::string> job = {
      {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_ID", "4711"}};
  EXPECT_EQ(World::from_variables(job).launcher, "single");
  auto batch_step = job;
  batch_step["SLURM_STEP_ID"] = "4294967294";  // Slurm's batch step
  EXPECT_EQ(World::from_variables(batch_step).size, 1);
}

TEST(WorldTest, ConcurrentSlurmStepsOfOneJobMeetOnDifferentPorts) {
  std::map<std::string, std::string> vars = {{"SLURM_PROCID", "0"},
                                             {"SLURM_NTASKS", "2"},
                                             {"SLURM_JOB_ID", "4711"},
                                             {"SLURM_STEP_ID", "0"}};
  const int first = World::from_variables(vars).master_port;
  vars["SLURM_STEP_ID"] = "1";
  EXPECT_NE(World::from_variables(vars).master_port, first);
}

TEST(WorldTest, OnlyLoopbackAddressesKeepRanksOnThisMachine) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("localhost"));
  EXPECT_FALSE(is_loopback_address("node0"));
  EXPECT_FALSE(is_loopback_address("10.0.0.127"));
}

TEST(WorldTest, ReadsOpenMpiVariables) {
  const World w = World::from_variables({{"OMPI_COMM_WORLD_RANK", "1"},
                                         {"OMPI_COMM_WORLD_SIZE", "2"},
                                         {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                         {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                         {"MASTER_PORT", "29999"}});
  EXPECT_EQ(w.launcher, "mpi");
  EXPECT_EQ(w.rank, 1);
  EXPECT_EQ(w.size, 2);
  EXPECT_EQ(w.master_addr, "127.0.0.1");
  EXPECT_EQ(w.master_port, 29999);
}

// Regression: every mpirun job met on port 29500, so two jobs on one node
// joined each other's rendezvous.
TEST(WorldTest, ConcurrentOpenMpiJobsMeetOnPortsFromTheirJobIds) {
  auto mpi = [](const std::string& jobid_variable, const std::string& jobid) {
    return World::from_variables({{"OMPI_COMM_WORLD_RANK", "0"},
                                  {"OMPI_COMM_WORLD_SIZE", "2"},
                                  {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                  {jobid_variable, jobid}});
  };
  const World a = mpi("OMPI_MCA_ess_base_jobid", "1204879361");
  const World b = mpi("OMPI_MCA_ess_base_jobid", "1204944897");
  EXPECT_EQ(a.job_id, "1204879361");
  EXPECT_NE(a.master_port, b.master_port);
  EXPECT_EQ(a.master_port, mpi("OMPI_MCA_ess_base_jobid", "1204879361").master_port);
  for (const World& w :
       {a, b, mpi("OMPI_MCA_orte_ess_jobid", "7"), mpi("PMIX_NAMESPACE", "prterun-node1-4242@1")}) {
    EXPECT_GE(w.master_port, 20000);
    EXPECT_LT(w.master_port, 30000);
    EXPECT_FALSE(w.job_id.empty());
  }
  EXPECT_EQ(mpi("OMPI_MCA_orte_ess_jobid", "7").job_id, "7");
  // MASTER_PORT still wins.
  EXPECT_EQ(World::from_variables({{"OMPI_COMM_WORLD_RANK", "0"},
                                   {"OMPI_COMM_WORLD_SIZE", "2"},
                                   {"OMPI_MCA_ess_base_jobid", "1204879361"},
                                   {"MASTER_PORT", "29999"}})
                .master_port,
            29999);
}

TEST(WorldTest, EachLauncherGivesTheJobAnIdentity) {
  EXPECT_EQ(World::from_variables({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"GPULAB_JOB_ID", "x1"}})
                .job_identity(),
            "torchrun job x1 of 2 ranks");
  EXPECT_EQ(World::from_variables({{"RANK", "0"},
                                   {"WORLD_SIZE", "2"},
                                   {"TORCHELASTIC_RUN_ID", "r9"},
                                   {"GPULAB_JOB_ID", "x1"}})
                .job_id,
            "r9");
  EXPECT_EQ(World::from_variables({{"SLURM_PROCID", "0"},
                                   {"SLURM_NTASKS", "2"},
                                   {"SLURM_JOB_ID", "4711"},
                                   {"SLURM_STEP_ID", "3"}})
                .job_id,
            "4711.3");
  EXPECT_EQ(World::from_variables({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).job_identity(),
            "torchrun job (no id) of 2 ranks");
}

// Regression: RANK=1 without WORLD_SIZE trained alone as rank 0.
TEST(WorldTest, RejectsAPartialSetNamingTheMissingVariable) {
  auto message = [](const std::map<std::string, std::string>& vars) {
    try {
      World::from_variables(vars);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"RANK", "1"}}).find("WORLD_SIZE is not"), std::string::npos)
      << message({{"RANK", "1"}});
  EXPECT_NE(message({{"WORLD_SIZE", "2"}}).find("RANK is not"), std::string::npos);
  EXPECT_NE(message({{"OMPI_COMM_WORLD_RANK", "1"}}).find("OMPI_COMM_WORLD_SIZE"),
            std::string::npos);
  EXPECT_NE(message({{"SLURM_PROCID", "1"}, {"SLURM_STEP_ID", "0"}}).find("SLURM_NTASKS"),
            std::string::npos);
  // An sbatch script (no step) is not a partial set.
  EXPECT_EQ(message({{"SLURM_PROCID", "0"}}), "no error");
}

TEST(WorldTest, OpenMpiOverSeveralNodesNeedsMasterAddr) {
  try {
    World::from_variables({{"OMPI_COMM_WORLD_RANK", "0"},
                           {"OMPI_COMM_WORLD_SIZE", "4"},
                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MASTER_ADDR"), std::string::npos) << e.what();
  }
}

TEST(WorldTest, TorchrunVariablesWinOverSlurm) {
  const World w = World::from_variables(
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}});
  EXPECT_EQ(w.launcher, "torchrun");
  EXPECT_EQ(w.size, 2);
}

TEST(WorldTest, RejectsMalformedAndInconsistentValues) {
  EXPECT_THROW(World::from_variables({{"RANK", "one"}, {"WORLD_SIZE", "2"}}), Error);
  EXPECT_THROW(World::from_variables({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), Error);
  EXPECT_THROW(
      World::from_variables({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}), Error);
  try {
    World::from_variables({{"RANK", "-1"}, {"WORLD_SIZE", "2"}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK"), std::string::npos) << e.what();
  }
}

TEST(WorldTest, FirstSlurmHostHandlesRangesAndLists) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node[03-05,07],cpu1"), "node03");
  EXPECT_EQ(first_slurm_host("a,b"), "a");
  EXPECT_THROW(first_slurm_host(""), Error);
}

TEST(WorldTest, DescribesTheWorldForTheProgressHeader) {
  World w;
  w.size = 8;
  w.nodes = 2;
  EXPECT_EQ(describe_world(w, "GPU", "NCCL"), "8 GPUs over 2 nodes (NCCL)");
  w.size = 2;
  w.nodes = 1;
  EXPECT_EQ(describe_world(w, "CPU", "Gloo"), "2 CPU ranks over 1 node (Gloo)");
}

}  // namespace
}  // namespace gpulab::distributed
