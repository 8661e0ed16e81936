// `gpulab train` on a GPU, one process and data-parallel ranks over NCCL (or
// Gloo, two ranks sharing one GPU): the ranks end with the weights the one
// process reaches.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/cuda_test.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace {

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

// lenet5 (no batch-norm) in float32, so ranks differ from one process only
// by summation order and cuDNN's choice of algorithms.
std::string train_command(const std::string& out, const std::string& env) {
  return quote(testing::gpulab_binary()) + " train --data " + quote(testing::fashion_mnist_dir()) +
         " --model lenet5 --batch-size 64 --epochs 2 --seed 5 --limit 640 --precision fp32" +
         " --quiet --out " + quote(out) + " --env " + env;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Tolerance: float32 with cuDNN's TF32 convolutions (LibTorch's default) and
// a different batch split per rank: 1e-3 relative after 20 steps.
void expect_same_weights(const std::string& one_path, const std::string& two_path) {
  testing::expect_same_weights(one_path, two_path, 1e-3, 1e-5);
}

TEST(CliGpuTrainingTest, TrainsOnTheGpuAndSaysSo_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  testing::TempDir tmp;
  const auto r = testing::run_shell(
      quote(testing::gpulab_binary()) + " train --data " + quote(testing::fashion_mnist_dir()) +
      " --model basic_cnn --batch-size 128 --epochs 2 --limit 2560 --seed 1 --env gpu --out " +
      quote(tmp / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("bf16 autocast"), std::string::npos) << r.output;
  const auto summary = read_json(tmp / "run/summary.json");
  EXPECT_NE(summary["device"].get<std::string>().find("cuda:0"), std::string::npos) << summary;
  // 2 epochs of 2,560 Fashion-MNIST images: well above chance (10%).
  EXPECT_GT(summary["final_minibatch_accuracy"].get<double>(), 0.5) << summary;
}

TEST(CliGpuTrainingTest, LaunchTwoNcclRanksMatchesOneGpuProcess_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  testing::TempDir tmp;
  const auto one = testing::run_shell(train_command(tmp / "one", "gpu"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                                      train_command(tmp / "two", "parallel"));
  if (two.exit_code != 0 && torch::cuda::device_count() < 2 &&
      two.output.find("Duplicate GPU") != std::string::npos) {
    GTEST_SKIP() << "NCCL refuses two ranks on one GPU ('Duplicate GPU detected'); this needs "
                    "a machine with 2 GPUs";
  }
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto summary = read_json(tmp / "two/summary.json");
  EXPECT_EQ(summary["world_size"], 2);
  EXPECT_EQ(summary["dist_backend"], "nccl");
  expect_same_weights(tmp / "one/model.safetensors", tmp / "two/model.safetensors");
}

// NCCL will not put two ranks on one GPU; Gloo will (it reduces CUDA tensors
// through host memory). The data-parallel path on GPU tensors, checked on a
// machine with one GPU.
TEST(CliGpuTrainingTest, LaunchTwoGlooRanksSharingTheGpuMatchesOneGpuProcess_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  testing::TempDir tmp;
  const auto one = testing::run_shell(train_command(tmp / "one", "gpu"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two =
      testing::run_shell(quote(testing::gpulab_binary()) + " launch -n 2 -- " +
                         train_command(tmp / "two", "parallel") + " --dist-backend gloo");
  if (two.exit_code != 0 && two.output.find("built without Gloo") != std::string::npos) {
    GTEST_SKIP() << "this build has no Gloo (no gloo/config.h beside LibTorch's headers)";
  }
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto summary = read_json(tmp / "two/summary.json");
  EXPECT_EQ(summary["world_size"], 2);
  EXPECT_EQ(summary["dist_backend"], "gloo");
  EXPECT_NE(summary["device"].get<std::string>().find("cuda:0"), std::string::npos) << summary;
  expect_same_weights(tmp / "one/model.safetensors", tmp / "two/model.safetensors");
}

}  // namespace
}  // namespace gpulab
