// A training run killed with SIGKILL at arbitrary moments and resumed ends
// with weights bit-identical to an uninterrupted run (CPU, fixed seed).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "gpulab/core/error.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> train_args(const std::string& out) {
  // clang-format off
  return {"train", "--data", testing::fashion_mnist_dir(), "--limit", "1500", "--out", out,
          "--model", "basic_cnn", "--epochs", "2", "--batch-size", "32", "--solver", "sgdm",
          "--shuffle", "every-epoch", "--checkpoint-unit", "iteration",
          "--checkpoint-frequency", "7", "--val-split", "0.1", "--validation-frequency", "25",
          "--env", "cpu", "--seed", "11", "--quiet"};
  // clang-format on
}

// Starts gpulab with `args` and SIGKILLs it `delay_ms` after it wrote a new
// checkpoint (so every round makes progress); returns true if it was killed,
// false if it finished first.
bool run_and_kill(const std::vector<std::string>& args, const std::string& out, int delay_ms) {
  const auto latest = fs::path(out) / "checkpoints" / "latest.json";
  const std::string before = fs::exists(latest) ? testing::read_bytes(latest.string()) : "";
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string bin = testing::gpulab_binary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  for (int waited = 0; waited < 120000; waited += 2) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    if (fs::exists(latest) && testing::read_bytes(latest.string()) != before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

}  // namespace

TEST(CliResumeTest, KilledAndResumedRunEndsBitIdentical) {
  testing::TempDir dir;
  const std::string straight = dir / "straight", killed = dir / "killed";
  auto r = testing::run_gpulab(train_args(straight));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  auto resume_args = train_args(killed);
  resume_args.push_back("--resume");
  int kills = 0;
  kills += run_and_kill(train_args(killed), killed, 3);
  for (int delay : {40, 0, 15, 90, 7}) {
    if (fs::exists(fs::path(killed) / "model.safetensors")) break;
    kills += run_and_kill(resume_args, killed, delay);
  }
  EXPECT_GE(kills, 2) << "the run finished before it could be killed twice";
  if (!fs::exists(fs::path(killed) / "model.safetensors")) {
    auto done = testing::run_gpulab(resume_args);
    ASSERT_EQ(done.exit_code, 0) << done.output;
  }

  auto a = models::load_safetensors(straight + "/model.safetensors").tensors;
  auto b = models::load_safetensors(killed + "/model.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name << " differs";
}

TEST(CliResumeTest, ResumingAFolderWithoutASpecIsRefused) {
  testing::TempDir dir;
  fs::create_directories(dir / "empty");
  auto r = testing::run_gpulab(
      {"train", "--data", testing::fashion_mnist_dir(), "--out", dir / "empty", "--resume"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("spec.yaml"), std::string::npos) << r.output;
}

// Regression: classes given as numbers (--classes 5,6 written to spec.yaml,
// or `data_options: {classes: [5, 6]}` in a config file) failed with "[json.exception.
// type_error.302] type must be string, but is number".
TEST(CliResumeTest, NumericClassesResumeAndComeFromAConfigFile) {
  testing::TempDir dir;
  // clang-format off
  const std::vector<std::string> common = {"--data", testing::fashion_mnist_dir(),
                                           "--per-class", "20", "--batch-size", "20",
                                           "--env", "cpu", "--quiet"};
  // clang-format on
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), common.begin(), common.end());
    return testing::run_gpulab(args);
  };
  auto r = with({"train", "--classes", "5,6,7", "--epochs", "1", "--out", dir / "rsa"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string spec = testing::read_bytes(dir / "rsa/spec.yaml");
  EXPECT_NE(spec.find("classes: [\"5\", \"6\", \"7\"]"), std::string::npos) << spec;
  r = with({"train", "--resume", "--epochs", "2", "--out", dir / "rsa"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(testing::read_bytes(dir / "rsa/summary.json").find("\"epochs_completed\": 2"),
            std::string::npos);

  testing::write_bytes(dir / "cfg.yaml", "data_options:\n  classes: [5, 6]\nmax_epochs: 1\n");
  r = with({"train", "--config", dir / "cfg.yaml", "--out", dir / "cfg"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(testing::read_bytes(dir / "cfg/summary.json").find("\"epochs_completed\": 1"),
            std::string::npos);
}

}  // namespace gpulab
