// Data-parallel training on CPU ranks over Gloo, started by every launcher
// gpulab supports: gpulab launch, Open MPI's mpirun and Slurm's srun. Two ranks
// end with the weights one process reaches; lost, hung and mismatched ranks
// end the job with a message naming them.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/distributed/local_launcher.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

// lenet5 has no batch-norm, so ranks reproduce one process up to float
// summation order. 650 images make a partial last mini-batch of 10 (5 per
// rank), whose gradient must be weighted by its own size.
std::string train_command(const std::string& out, const std::string& env,
                          const std::string& extra = "", int limit = 650, bool quiet = true) {
  return quote(testing::gpulab_binary()) + " train --data " + quote(testing::fashion_mnist_dir()) +
         " --model lenet5 --batch-size 64 --epochs 2 --seed 5 --threads 1 --limit " +
         std::to_string(limit) + (quiet ? " --quiet" : "") + " --out " + quote(out) + " --env " +
         env + " " + extra;
}

void expect_same_weights(const std::string& a, const std::string& b) {
  testing::expect_same_weights(a, b, 1e-5, 1e-6);
}

// Two classes of 24 grey 40x40 images, "dark" and "light", as PGM files.
void write_dark_and_light_folder(const std::string& data) {
  torch::manual_seed(0);
  for (const std::string label : {"dark", "light"}) {
    fs::create_directories(data + "/" + label);
    for (int i = 0; i < 24; ++i) {
      auto image = torch::randint(0, 128, {1, 40, 40}, torch::kUInt8);
      if (label == "light") image += 120;
      testing::write_pnm(data + "/" + label + "/" + std::to_string(i) + ".pgm", image);
    }
  }
}

class ParallelTrainingTest : public ::testing::Test {
 protected:
  // The single-process run every launcher must reproduce (once per suite).
  static void SetUpTestSuite() {
    reference_dir_ = new testing::TempDir();
    const auto r = testing::run_shell(train_command(*reference_dir_ / "run", "cpu"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete reference_dir_;
    reference_dir_ = nullptr;
  }
  static std::string reference_model() { return *reference_dir_ / "run/model.safetensors"; }

  static testing::TempDir* reference_dir_;
  testing::TempDir tmp_;
};
testing::TempDir* ParallelTrainingTest::reference_dir_ = nullptr;

TEST_F(ParallelTrainingTest, LaunchTwoRanksMatchesOneProcess) {
  const std::string out = tmp_ / "run";
  const auto r = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                    train_command(out, "parallel"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_weights(reference_model(), out + "/model.safetensors");
  std::ifstream summary(out + "/summary.json");
  const auto j = nlohmann::json::parse(summary);
  EXPECT_EQ(j["world_size"], 2);
  EXPECT_EQ(j["dist_backend"], "gloo");
  EXPECT_EQ(j["iterations"], 22);
  EXPECT_EQ(j["images_seen"], 2 * 650);
}

TEST_F(ParallelTrainingTest, OnlyRankZeroPrintsTheTableNamingTheWorld) {
  const std::string out = tmp_ / "run";
  const auto r = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                    train_command(out, "parallel", "--epochs 1", 128, false));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string header = "Training on 2 CPU ranks over 1 node (Gloo)";
  const size_t first = r.output.find(header);
  ASSERT_NE(first, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(header, first + 1), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Global mini-batch 64 (32 per rank)"), std::string::npos) << r.output;
}

TEST_F(ParallelTrainingTest, MpirunTwoRanksMatchesOneProcess) {
  ASSERT_EQ(testing::run_shell("command -v mpirun").exit_code, 0)
      << "mpirun (Debian's openmpi-bin) is needed; scripts/install-deps.sh installs it";
  const std::string out = tmp_ / "run";
  const auto r = testing::run_shell(
      "mpirun --allow-run-as-root --oversubscribe -np 2 -x MASTER_PORT=" +
      std::to_string(distributed::free_tcp_port()) + " " + train_command(out, "parallel"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_weights(reference_model(), out + "/model.safetensors");
}

TEST_F(ParallelTrainingTest, SrunTwoRanksOnAOneNodeClusterMatchesOneProcess) {
  ASSERT_EQ(
      testing::run_shell("command -v srun && command -v slurmd && command -v munged").exit_code, 0)
      << "srun, slurmd and munged (Debian's slurm-wlm, munge) are needed; "
         "scripts/install-deps.sh installs them";
  const std::string script = std::string(GPULAB_SOURCE_DIR) + "/tests/support/slurm_cluster.sh";
  const std::string cluster = tmp_ / "slurm";
  const auto up = testing::run_shell(quote(script) + " start " + quote(cluster));
  struct Down {
    std::string cmd;
    ~Down() { testing::run_shell(cmd); }
  } down{quote(script) + " stop " + quote(cluster)};
  ASSERT_EQ(up.exit_code, 0) << up.output;
  const std::string out = tmp_ / "run";
  const auto r = testing::run_shell("SLURM_CONF=" + quote(cluster + "/slurm.conf") +
                                    " timeout 300 srun -n 2 " + train_command(out, "parallel"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_weights(reference_model(), out + "/model.safetensors");
}

// Per-sample augmentation is drawn from (seed, epoch, sample), never from the
// rank: ranks streaming their slices reproduce the one-process run too.
TEST_F(ParallelTrainingTest, StreamingLoaderWithAugmentationMatchesOneProcess) {
  const std::string data = tmp_ / "folder";
  write_dark_and_light_folder(data);
  auto command = [&](const std::string& out, const std::string& env) {
    return quote(testing::gpulab_binary()) + " train --data " + quote(data) +
           " --model lenet5 --random-resized-crop 28 --rand-x-reflection --loader stream"
           " --loader-threads 2 --batch-size 16 --epochs 2 --seed 3 --threads 1 --quiet --out " +
           quote(out) + " --env " + env;
  };
  const auto one = testing::run_shell(command(tmp_ / "one", "cpu"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                      command(tmp_ / "two", "parallel"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  expect_same_weights(tmp_ / "one/model.safetensors", tmp_ / "two/model.safetensors");
}

// Regression: every rank of a machine took one decode thread per core.
TEST_F(ParallelTrainingTest, StreamingRanksShareTheMachinesDecodeThreads) {
  const std::string data = tmp_ / "folder";
  write_dark_and_light_folder(data);
  const auto two = testing::run_shell(
      quote(testing::gpulab_binary()) + " launch -n 2 -- " + quote(testing::gpulab_binary()) +
      " train --data " + quote(data) +
      " --model lenet5 --random-resized-crop 28 --loader stream --batch-size 16 --epochs 1"
      " --threads 1 --env parallel --out " +
      quote(tmp_ / "two"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string expected = "Loader: " + std::to_string(std::max(1u, cores / 2)) + " decode";
  EXPECT_NE(two.output.find(expected), std::string::npos) << two.output;
}

// Regression: with files skipped on some ranks, each rank's loss was weighted
// by the planned global batch instead of the decoded one, and a global batch
// of only bad files still moved the weights (momentum), unlike one process.
TEST_F(ParallelTrainingTest, SkippedBadFilesTwoRanksMatchOneProcess) {
  const std::string data = tmp_ / "folder";
  write_dark_and_light_folder(data);
  // Unshuffled, samples 24-27 (step 7 of 4) are bad on both ranks, and 28
  // makes step 8 decode 1 image on rank 0 and 2 on rank 1.
  for (int i = 1; i <= 5; ++i) {
    testing::write_bytes(data + "/dark/zz_bad" + std::to_string(i) + ".pgm",
                         "P5\n40 40\n255\nshort");
  }
  auto command = [&](const std::string& out, const std::string& env) {
    return quote(testing::gpulab_binary()) + " train --data " + quote(data) +
           " --model lenet5 --random-resized-crop 28 --loader stream --skip-bad-files"
           " --shuffle never --batch-size 4 --epochs 2 --seed 3 --threads 1 --quiet --out " +
           quote(out) + " --env " + env;
  };
  const auto one = testing::run_shell(command(tmp_ / "one", "cpu"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                      command(tmp_ / "two", "parallel"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  expect_same_weights(tmp_ / "one/model.safetensors", tmp_ / "two/model.safetensors");
  // Regression: the summary counted rank 0's share of the bad files only.
  auto skipped = [&](const std::string& run) {
    return nlohmann::json::parse(core::read_file(tmp_ / (run + "/summary.json")))["skipped_files"];
  };
  EXPECT_EQ(skipped("one"), 5);
  EXPECT_EQ(skipped("two"), 5);
  // Regression: ranks counted the planned images, one process the decoded.
  auto images_seen = [&](const std::string& run) {
    return nlohmann::json::parse(core::read_file(tmp_ / (run + "/summary.json")))["images_seen"]
        .get<int64_t>();
  };
  EXPECT_EQ(images_seen("two"), images_seen("one"));
  EXPECT_LT(images_seen("one"), 2 * 53);
}

// basic_cnn has batch-norm: with --sync-batchnorm two ranks normalise with the
// statistics of the global mini-batch and reproduce one process; without it
// each rank normalises its own half and the weights differ.
TEST_F(ParallelTrainingTest, SyncBatchNormTwoRanksMatchOneProcess) {
  auto command = [&](const std::string& out, const std::string& env, const std::string& extra) {
    return quote(testing::gpulab_binary()) + " train --data " +
           quote(testing::fashion_mnist_dir()) +
           " --model basic_cnn --batch-size 64 --epochs 1 --seed 5 --threads 1 --limit 640" +
           " --quiet --out " + quote(out) + " --env " + env + " " + extra;
  };
  const auto one = testing::run_shell(command(tmp_ / "one", "cpu", ""));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto synced = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                         command(tmp_ / "synced", "parallel", "--sync-batchnorm"));
  ASSERT_EQ(synced.exit_code, 0) << synced.output;
  const auto wa = models::load_safetensors(tmp_ / "one/model.safetensors").tensors;
  const auto ws = models::load_safetensors(tmp_ / "synced/model.safetensors").tensors;
  const auto per_rank = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                           command(tmp_ / "per_rank", "parallel", ""));
  ASSERT_EQ(per_rank.exit_code, 0) << per_rank.output;
  const auto wp = models::load_safetensors(tmp_ / "per_rank/model.safetensors").tensors;
  double synced_max = 0, per_rank_max = 0;
  for (const auto& [name, tensor] : wa) {
    if (!tensor.is_floating_point()) continue;
    synced_max = std::max(synced_max, (tensor - ws.at(name)).abs().max().item<double>());
    per_rank_max = std::max(per_rank_max, (tensor - wp.at(name)).abs().max().item<double>());
  }
  EXPECT_LT(synced_max, 1e-4);
  EXPECT_GT(per_rank_max, 10 * synced_max) << "per-rank batch-norm should differ from one process";
  int running_vars = 0;
  for (const auto& [name, tensor] : wa) {
    if (name.size() < 11 || name.compare(name.size() - 11, 11, "running_var") != 0) continue;
    ++running_vars;
    EXPECT_TRUE(torch::allclose(tensor, ws.at(name), 1e-4, 1e-5)) << name;
  }
  EXPECT_GT(running_vars, 0);
}

// Regression: 201 images in mini-batches of 100 end with a global batch of one
// image, which leaves rank 0 an empty slice. It skipped forward and backward,
// so it never joined the synchronised batch-norm all-reduces, and Gloo
// aborted on the mismatched collectives.
TEST_F(ParallelTrainingTest, SyncBatchNormWithAnEmptyRankSliceMatchesOneProcess) {
  auto command = [&](const std::string& out, const std::string& env, const std::string& extra) {
    return quote(testing::gpulab_binary()) + " train --data " +
           quote(testing::fashion_mnist_dir()) +
           " --model basic_cnn --batch-size 100 --epochs 1 --seed 5 --threads 1 --limit 201" +
           " --quiet --out " + quote(out) + " --env " + env + " " + extra;
  };
  const auto one = testing::run_shell(command(tmp_ / "one", "cpu", ""));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto synced = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                         command(tmp_ / "synced", "parallel", "--sync-batchnorm"));
  ASSERT_EQ(synced.exit_code, 0) << synced.output;
  // Integer buffers (num_batches_tracked) must be equal, the rest close.
  testing::expect_same_weights(tmp_ / "one/model.safetensors", tmp_ / "synced/model.safetensors",
                               1e-4, 1e-5);
}

// A launch in the background with its output in a file, for the tests that
// kill or stop a rank while it trains.
class BackgroundLaunch {
 public:
  BackgroundLaunch(const std::string& command_line, const std::string& log) : log_(log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl("/bin/sh", "sh", "-c", ("exec " + command_line).c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~BackgroundLaunch() {
    if (pid_ > 0 && !done_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string output() const { return testing::read_bytes(log_); }
  // The pids the launcher printed for its latest attempt.
  std::vector<pid_t> rank_pids() const {
    std::vector<pid_t> pids;
    const std::string text = output();
    const std::regex line("ranks \\(pids ([0-9 ]+)\\)");
    for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) {
      pids.clear();
      std::istringstream in((*it)[1].str());
      for (pid_t p; in >> p;) pids.push_back(p);
    }
    return pids;
  }
  // Exit code, or -1 if it has not ended within `seconds`.
  int wait(double seconds) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        done_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool done_ = false;
};

bool wait_for_file(const std::string& path, double seconds) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  while (Clock::now() < deadline) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string long_run(const std::string& out, const std::string& extra) {
  return train_command(out, "parallel",
                       "--checkpoint-unit iteration --checkpoint-frequency 5 " + extra, 4000);
}

TEST(ParallelFailureTest, KilledRankEndsTheJobNamingIt) {
  testing::TempDir tmp;
  const std::string out = tmp / "run";
  BackgroundLaunch job(quote(testing::gpulab_binary()) + " launch -n 2 --grace-seconds 5 -- " +
                           long_run(out, "--epochs 20"),
                       tmp / "log");
  ASSERT_TRUE(wait_for_file(out + "/checkpoints/latest.json", 120)) << job.output();
  const auto pids = job.rank_pids();
  ASSERT_EQ(pids.size(), 2u) << job.output();
  const auto killed_at = Clock::now();
  ::kill(pids[1], SIGKILL);
  const int code = job.wait(60);
  const double seconds = std::chrono::duration<double>(Clock::now() - killed_at).count();
  ASSERT_NE(code, -1) << "the job did not end within 60 s of losing a rank\n" << job.output();
  EXPECT_NE(code, 0);
  EXPECT_LT(seconds, 60);
  EXPECT_NE(job.output().find("rank 1 of 2 failed: killed by signal 9 (SIGKILL)"),
            std::string::npos)
      << job.output();
}

TEST(ParallelFailureTest, MaxRestartsResumesFromTheCheckpointAndCompletes) {
  testing::TempDir tmp;
  const std::string out = tmp / "run";
  BackgroundLaunch job(quote(testing::gpulab_binary()) +
                           " launch -n 2 --max-restarts 1 --grace-seconds 5 -- " +
                           long_run(out, "--epochs 2"),
                       tmp / "log");
  ASSERT_TRUE(wait_for_file(out + "/checkpoints/latest.json", 120)) << job.output();
  const auto pids = job.rank_pids();
  ASSERT_EQ(pids.size(), 2u) << job.output();
  ::kill(pids[1], SIGKILL);
  const int code = job.wait(300);
  ASSERT_EQ(code, 0) << job.output();
  EXPECT_NE(job.output().find("restarting all 2 ranks"), std::string::npos) << job.output();
  EXPECT_NE(job.output().find("completed after 1 restart"), std::string::npos) << job.output();
  std::ifstream summary(out + "/summary.json");
  const auto j = nlohmann::json::parse(summary);
  EXPECT_EQ(j["iterations"], 2 * (4000 / 64 + 1));
  EXPECT_EQ(j["stop_reason"], "max-epochs");
}

TEST(ParallelFailureTest, HungRankFailsTheOthersWithinTheTimeout) {
  testing::TempDir tmp;
  const std::string out = tmp / "run";
  BackgroundLaunch job(quote(testing::gpulab_binary()) + " launch -n 2 --grace-seconds 2 -- " +
                           long_run(out, "--epochs 20 --dist-timeout 5"),
                       tmp / "log");
  ASSERT_TRUE(wait_for_file(out + "/checkpoints/latest.json", 120)) << job.output();
  const auto pids = job.rank_pids();
  ASSERT_EQ(pids.size(), 2u) << job.output();
  const auto stopped_at = Clock::now();
  ::kill(pids[1], SIGSTOP);  // hangs without dying
  const int code = job.wait(60);
  const double seconds = std::chrono::duration<double>(Clock::now() - stopped_at).count();
  ASSERT_NE(code, -1) << "a hung rank made the job hang\n" << job.output();
  EXPECT_NE(code, 0);
  EXPECT_LT(seconds, 30);
  EXPECT_NE(job.output().find("lost rank 1"), std::string::npos) << job.output();
  EXPECT_NE(job.output().find("rank 1 of 2 failed or stopped answering"), std::string::npos)
      << job.output();
}

// Regression: rank 0 hosts the rendezvous store, and a stopped rank 0 keeps
// its socket open without answering, so the others blocked forever while
// naming the lost rank (the store client has no receive timeout).
TEST(ParallelFailureTest, HungRankZeroFailsTheOthersWithinTheTimeout) {
  testing::TempDir tmp;
  const std::string out = tmp / "run";
  BackgroundLaunch job(quote(testing::gpulab_binary()) + " launch -n 2 --grace-seconds 2 -- " +
                           long_run(out, "--epochs 20 --dist-timeout 8"),
                       tmp / "log");
  ASSERT_TRUE(wait_for_file(out + "/checkpoints/latest.json", 120)) << job.output();
  const auto pids = job.rank_pids();
  ASSERT_EQ(pids.size(), 2u) << job.output();
  const auto stopped_at = Clock::now();
  ::kill(pids[0], SIGSTOP);
  const int code = job.wait(60);
  const double seconds = std::chrono::duration<double>(Clock::now() - stopped_at).count();
  ::kill(pids[0], SIGKILL);
  ASSERT_NE(code, -1) << "a hung rank 0 made the job hang\n" << job.output();
  EXPECT_NE(code, 0);
  EXPECT_LT(seconds, 8 + 2 + 5) << "the timeout, the launcher's grace, and slack";
  EXPECT_NE(job.output().find("lost rank 0"), std::string::npos) << job.output();
  EXPECT_NE(job.output().find("rank 0 of 2 failed or stopped answering"), std::string::npos)
      << job.output();
}

// Regression: the peer's diagnosis connected to the dead store with a 5 s
// timeout, longer than its 4 s budget, so a killed rank 0 was reported as
// hung ("rank 0 hung or was stopped").
TEST(ParallelFailureTest, KilledRankZeroIsReportedAsExitedNotHung) {
  testing::TempDir tmp;
  const std::string out = tmp / "run";
  BackgroundLaunch job(quote(testing::gpulab_binary()) + " launch -n 2 --grace-seconds 15 -- " +
                           long_run(out, "--epochs 20"),
                       tmp / "log");
  ASSERT_TRUE(wait_for_file(out + "/checkpoints/latest.json", 120)) << job.output();
  const auto pids = job.rank_pids();
  ASSERT_EQ(pids.size(), 2u) << job.output();
  ::kill(pids[0], SIGKILL);
  const int code = job.wait(60);
  ASSERT_NE(code, -1) << job.output();
  EXPECT_NE(code, 0);
  EXPECT_NE(job.output().find("[rank 1] gpulab: error: rank 1: "), std::string::npos)
      << job.output();
  EXPECT_NE(job.output().find("lost rank 0 (its rendezvous store no longer answers: it exited or "
                              "was killed)"),
            std::string::npos)
      << job.output();
  EXPECT_EQ(job.output().find("hung or was stopped"), std::string::npos) << job.output();
}

// Two ranks started by hand, each with its own extra flags; returns their
// combined output and exit codes.
testing::CommandResult run_two_ranks_by_hand(const std::string& dir, const std::string& rank0_flags,
                                             const std::string& rank1_flags) {
  const std::string port = std::to_string(distributed::free_tcp_port());
  auto rank = [&](int r, const std::string& flags) {
    return "RANK=" + std::to_string(r) + " WORLD_SIZE=2 MASTER_PORT=" + port + " " +
           quote(testing::gpulab_binary()) + " train --data " +
           quote(testing::fashion_mnist_dir()) + " --epochs 1 --threads 1" +
           " --dist-timeout 20 --env parallel --out " + quote(dir) + " " + flags;
  };
  return testing::run_shell("(" + rank(1, rank1_flags) + ") & " + rank(0, rank0_flags) +
                            "; a=$?; wait $!; b=$?; echo codes $a $b");
}

// Regression: a rank that failed after joining posted its error, but the
// others only read it once their start-up wait timed out.
TEST(ParallelFailureTest, ARankFailingAtStartUpFailsTheOthersAtOnce) {
  testing::TempDir tmp;
  const std::string port = std::to_string(distributed::free_tcp_port());
  auto rank = [&](int r, const std::string& data) {
    return "RANK=" + std::to_string(r) + " WORLD_SIZE=2 MASTER_PORT=" + port + " " +
           quote(testing::gpulab_binary()) + " train --data " + quote(data) +
           " --model lenet5 --limit 256 --epochs 1 --threads 1 --dist-timeout 60 --env parallel" +
           " --out " + quote(tmp / "run");
  };
  const auto started = Clock::now();
  const auto r = testing::run_shell("(" + rank(1, tmp / "missing") + ") & " +
                                    rank(0, testing::fashion_mnist_dir()) +
                                    "; a=$?; wait $!; b=$?; echo codes $a $b");
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  EXPECT_NE(r.output.find("rank 1 failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("codes 0"), std::string::npos) << r.output;
  EXPECT_LT(seconds, 30) << "rank 0 waited for the timeout (60 s)\n" << r.output;
}

TEST(ParallelFailureTest, MismatchedDataIsRejectedAtStartUp) {
  testing::TempDir tmp;
  const auto r = run_two_ranks_by_hand(tmp / "run", "--model lenet5 --limit 640",
                                       "--model lenet5 --limit 320");
  EXPECT_NE(r.output.find("ranks disagree on the data and schedule"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("640 training images"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("320 training images"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("codes 0"), std::string::npos) << r.output;
}

// Regression: the check compared parameter counts only, so ranks whose layers
// differ in width met in an all-reduce of different sizes and rank 0 aborted
// inside Gloo.
TEST(ParallelFailureTest, RanksWhoseModelsDifferInWidthAreRejectedAtStartUp) {
  testing::TempDir tmp;
  const auto r = run_two_ranks_by_hand(tmp / "run", "--model basic_cnn --limit 256",
                                       "--model basic_cnn --limit 256 --model-option nf=16");
  EXPECT_NE(r.output.find("ranks disagree on the model"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("codes 0"), std::string::npos) << r.output;
}

TEST(ParallelFailureTest, RanksWithDifferentLearnRatesAreRejectedAtStartUp) {
  testing::TempDir tmp;
  const auto r = run_two_ranks_by_hand(tmp / "run", "--model lenet5 --limit 256",
                                       "--model lenet5 --limit 256 --learn-rate 0.1");
  EXPECT_NE(r.output.find("ranks disagree on the optimizer"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("codes 0"), std::string::npos) << r.output;
}

// Regression: options that decide when the collectives run were not
// compared, so ranks logging at different iterations met in mismatched
// all-reduces and Gloo aborted mid-run.
TEST(ParallelFailureTest, RanksWithDifferentVerboseFrequenciesAreRejectedAtStartUp) {
  testing::TempDir tmp;
  const auto r = run_two_ranks_by_hand(tmp / "run", "--model lenet5 --limit 256",
                                       "--model lenet5 --limit 256 --verbose-frequency 3");
  EXPECT_NE(r.output.find("ranks disagree on the collectives"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("log every 3 iterations (--verbose-frequency)"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("codes 0"), std::string::npos) << r.output;
}

TEST(ParallelFailureTest, RanksWithDifferentBucketCapsAreRejectedAtStartUp) {
  testing::TempDir tmp;
  const auto r = run_two_ranks_by_hand(tmp / "run", "--model lenet5 --limit 256",
                                       "--model lenet5 --limit 256 --bucket-cap-mb 0.01");
  EXPECT_NE(r.output.find("ranks disagree on the collectives"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--bucket-cap-mb"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("codes 0"), std::string::npos) << r.output;
}

// Regression: without --env parallel, each rank of a launch trained alone
// into the same RUN_DIR (duplicate history rows).
TEST(ParallelFailureTest, LaunchedRanksWithoutEnvParallelAreRefused) {
  testing::TempDir tmp;
  const auto r = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                    train_command(tmp / "run", "cpu", "--epochs 1", 128));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("add --env parallel"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "run/history.jsonl")) << r.output;
}

// Regression: RANK=1 without WORLD_SIZE trained alone as rank 0.
TEST(ParallelFailureTest, RankWithoutWorldSizeIsRefusedNamingIt) {
  testing::TempDir tmp;
  const auto r =
      testing::run_shell("RANK=1 " + train_command(tmp / "run", "parallel", "--epochs 1", 128));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("RANK=1 is set but WORLD_SIZE is not"), std::string::npos) << r.output;
}

// Regression: the launcher's headline showed CLI11's "Run with --help for more
// information." instead of the usage error before it.
TEST(ParallelFailureTest, LaunchHeadlineNamesARanksUsageError) {
  testing::TempDir tmp;
  const auto r = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                    quote(testing::gpulab_binary()) + " train --out " +
                                    quote(tmp / "run") + " --no-such-flag");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const size_t at = r.output.find("of 2 failed: exit code 2: ");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string headline = r.output.substr(at, r.output.find('\n', at) - at);
  EXPECT_NE(headline.find("was not expected: --no-such-flag"), std::string::npos) << headline;
  EXPECT_EQ(headline.find("Run with --help"), std::string::npos) << headline;
}

}  // namespace
}  // namespace gpulab
