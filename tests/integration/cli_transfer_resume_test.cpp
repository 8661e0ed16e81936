// A transfer-learning run folder stands on its own: a TorchScript archive
// trained as the network is kept in RUN_DIR, --resume needs neither the
// --weights file nor a change of parameter rules, and a --config file's
// weights path is relative to the config file.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/config_file.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/scripted_module.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

namespace {

nlohmann::json model_metadata(const std::string& model_file) {
  return nlohmann::json::parse(models::load_safetensors(model_file).metadata.at("gpulab"));
}

// Two Fashion-MNIST classes, one small epoch (more with `epochs`).
std::vector<std::string> train_args(const std::string& out, const std::string& epochs = "1") {
  return {"train",     "--data",       testing::fashion_mnist_dir(),
          "--classes", "5,6",          "--per-class",
          "20",        "--batch-size", "20",
          "--epochs",  epochs,         "--env",
          "cpu",       "--quiet",      "--out",
          out};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

// Regression: the model file recorded the archive's absolute path; deleting
// it broke predict, evaluate, export and --resume of the run.
TEST(CliTransferResumeTest, TorchScriptRunWorksAfterTheArchiveIsDeletedAndTheRunMoved) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "orig.pt", 1, 2);
  auto r =
      run_gpulab(train_args(dir / "run") +
                 std::vector<std::string>{"--model", "torchscript", "--weights", dir / "orig.pt"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "run/network.pt"));
  EXPECT_EQ(model_metadata(dir / "run/model.safetensors")["model"]["options"]["file"],
            "network.pt");
  fs::remove(dir / "orig.pt");
  fs::rename(dir / "run", dir / "moved");
  const std::string run = dir / "moved";

  testing::write_pnm(dir / "img.pgm", torch::full({1, 28, 28}, 90, torch::kUInt8));
  r = run_gpulab({"predict", "--model", run, "--input", dir / "img.pgm", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_gpulab({"evaluate", "--model", run, "--data", testing::fashion_mnist_dir(), "--classes",
                  "5,6", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_gpulab({"export", "--model", run, "--format", "torchscript", "--out", dir / "e.pt"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_gpulab(train_args(run, "2") + std::vector<std::string>{"--resume"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(core::load_yaml_file(run + "/spec.yaml")["model_options"]["file"], "network.pt");
}

// Regression: --resume with other rules said the checkpoint was "damaged",
// and spec.yaml, already rewritten with them, broke a later plain --resume.
TEST(CliTransferResumeTest, ResumeWithChangedFreezeRulesIsRefusedAndLeavesTheRunResumable) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "w.pt", 1, 2);
  const std::vector<std::string> weights = {"--model",    "torchscript", "--weights",
                                            dir / "w.pt", "--freeze",    "backbone.conv.*"};
  auto r = run_gpulab(train_args(dir / "run") + weights);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string spec_before = core::read_file(dir / "run/spec.yaml");
  r = run_gpulab(train_args(dir / "run", "2") +
                 std::vector<std::string>{"--resume", "--freeze", "backbone.fc.*"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--freeze/--learn-rate-factor changed since the checkpoint"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("resume with the original rules: --freeze 'backbone.conv.*'"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--weights " + (dir / "run/model.safetensors")), std::string::npos)
      << r.output;
  EXPECT_EQ(core::read_file(dir / "run/spec.yaml"), spec_before);
  r = run_gpulab(train_args(dir / "run", "2") + std::vector<std::string>{"--resume"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // The suggested new run: the trained network (its archive and tensors) with the new rules.
  r = run_gpulab(train_args(dir / "next") + std::vector<std::string>{"--weights",
                                                                     dir / "run/model.safetensors",
                                                                     "--freeze", "backbone.fc.*"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto trained = models::load_safetensors(dir / "run/model.safetensors").tensors;
  const auto next = models::load_safetensors(dir / "next/model.safetensors").tensors;
  EXPECT_TRUE(torch::equal(trained.at("backbone.fc.weight"), next.at("backbone.fc.weight")));
  EXPECT_FALSE(torch::equal(trained.at("backbone.conv.weight"), next.at("backbone.conv.weight")));
}

// Regression: --resume re-read the --weights file though the checkpoint holds
// every weight; deleting it broke the resume.
TEST(CliTransferResumeTest, ResumeNeedsNotTheWeightsFile) {
  testing::TempDir dir;
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--classes", "0,1,2",
                       "--per-class", "20", "--epochs", "1", "--env", "cpu", "--quiet", "--out",
                       dir / "pre"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::copy_file(dir / "pre/model.safetensors", dir / "w.safetensors");
  r = run_gpulab(train_args(dir / "run") + std::vector<std::string>{"--weights",
                                                                    dir / "w.safetensors",
                                                                    "--num-classes", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::remove(dir / "w.safetensors");
  r = run_gpulab(train_args(dir / "run", "2") + std::vector<std::string>{"--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(model_metadata(dir / "run/model.safetensors")["normalization"],
            model_metadata(dir / "pre/model.safetensors")["normalization"]);
  EXPECT_EQ(model_metadata(dir / "run/model.safetensors")["model"]["arch"], "basic_cnn");
}

TEST(CliTransferResumeTest, ConfigWeightsPathIsRelativeToTheConfigFile) {
  testing::TempDir dir;
  fs::create_directories(dir / "cfg");
  testing::write_scripted_cnn(dir / "cfg/w.pt", 1, 2);
  core::write_file_atomic(dir / "cfg/run.yaml", "model: torchscript\nweights: w.pt\n");
  auto r = run_gpulab(train_args(dir / "run") +
                      std::vector<std::string>{"--config", dir / "cfg/run.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(core::load_yaml_file(dir / "run/spec.yaml")["weights"], dir / "cfg/w.pt");
}

}  // namespace gpulab
