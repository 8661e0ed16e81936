// The main workflow through the CLI: train on 2,000 Fashion-MNIST images,
// evaluate on 1,000 held-out ones, predict on image files.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/config_file.h"
#include "gpulab/data/idx_datastore.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

class CliTrainTest : public ::testing::Test {
 protected:
  // One trained run shared by the tests of this suite.
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    run_dir_ = *dir_ / "run";
    // clang-format off
    result_ = new testing::CommandResult(run_gpulab(
        {"train", "--data", testing::fashion_mnist_dir(), "--limit", "2000",
         "--model", "basic_cnn", "--out", run_dir_, "--epochs", "4", "--batch-size", "64",
         "--learn-rate", "0.02", "--env", "cpu", "--seed", "1"}));
    // clang-format on
  }
  static void TearDownTestSuite() {
    delete result_;
    delete dir_;
  }
  static testing::TempDir* dir_;
  static std::string run_dir_;
  static testing::CommandResult* result_;
};
testing::TempDir* CliTrainTest::dir_ = nullptr;
std::string CliTrainTest::run_dir_;
testing::CommandResult* CliTrainTest::result_ = nullptr;

TEST_F(CliTrainTest, TrainPrintsTheProgressTableAndWritesTheRunFolder) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const std::string& out = result_->output;
  EXPECT_NE(out.find("Training on CPU"), std::string::npos) << out;
  EXPECT_NE(out.find("Mini-batch"), std::string::npos);
  EXPECT_NE(out.find("Images/s"), std::string::npos);
  EXPECT_NE(out.find("Ankle boot"), std::string::npos);  // per-label counts
  for (const char* f : {"spec.yaml", "history.jsonl", "model.safetensors", "summary.json"}) {
    EXPECT_TRUE(fs::exists(run_dir_ + "/" + f)) << f;
  }
  auto spec = core::load_yaml_file(run_dir_ + "/spec.yaml");
  EXPECT_EQ(spec["options"]["batch_size"], 64);
  EXPECT_EQ(spec["options"]["solver"], "sgdm");  // defaults are filled in
  EXPECT_EQ(spec["model"], "basic_cnn");
  auto summary = nlohmann::json::parse(core::read_file(run_dir_ + "/summary.json"));
  EXPECT_GT(summary["images_per_second"].get<double>(), 0);
  EXPECT_EQ(summary["stop_reason"], "max-epochs");
}

TEST_F(CliTrainTest, EvaluateReachesEightyPercentOnHeldOutImages) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const std::string json = *dir_ / "eval.json";
  // t10k-* files: never seen in training.
  auto r = run_gpulab({"evaluate", "--model", run_dir_, "--data", testing::fashion_mnist_dir(),
                       "--limit", "1000", "--json", json});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(core::read_file(json));
  EXPECT_GE(j["accuracy"].get<double>(), 0.80) << r.output;
  EXPECT_EQ(j["per_class"].size(), 10u);
  EXPECT_EQ(j["confusion"].size(), 10u);
  int64_t total = 0;
  for (const auto& row : j["confusion"])
    for (const auto& v : row) total += v.get<int64_t>();
  EXPECT_EQ(total, 1000);
  EXPECT_NE(r.output.find("Precision"), std::string::npos);
}

TEST_F(CliTrainTest, PredictGivesTopKAndFullScoresPerImage) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  auto test = data::load_idx_folder(testing::fashion_mnist_dir(), data::IdxSplit::kTest);
  for (int i = 0; i < 3; ++i)
    testing::write_pnm(*dir_ / ("images/img" + std::to_string(i) + ".pgm"), test.images[i]);
  const std::string json = *dir_ / "pred.json";
  auto r = run_gpulab({"predict", "--model", run_dir_, "--input", *dir_ / "images", "--top-k", "3",
                       "--json", json});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(core::read_file(json));
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["top"].size(), 3u);
  EXPECT_EQ(j[0]["scores"].size(), 10u);
  double sum = 0;
  for (const auto& s : j[0]["scores"]) sum += s.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_GE(j[0]["top"][0]["score"].get<double>(), j[0]["top"][1]["score"].get<double>());
  // test image 0 is an ankle boot, an easy class.
  EXPECT_EQ(j[0]["top"][0]["label"], "Ankle boot") << r.output;
}

TEST_F(CliTrainTest, AnExistingRunFolderIsNeverOverwritten) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const std::string before = core::read_file(run_dir_ + "/model.safetensors");
  auto r = run_gpulab(
      {"train", "--data", testing::fashion_mnist_dir(), "--out", run_dir_, "--epochs", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  EXPECT_EQ(core::read_file(run_dir_ + "/model.safetensors"), before);
}

TEST(CliConfigTest, FlagsOverrideTheConfigFile) {
  testing::TempDir dir;
  testing::write_bytes(dir / "cfg.yaml",
                       "model: lenet5\nbatch_size: 100\nsolver: adam\nlearn_rate: 0.001\n"
                       "max_epochs: 1\nlimit_unused: 0\n");
  // An unknown key is rejected naming the file.
  auto bad = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--out", dir / "bad",
                         "--config", dir / "cfg.yaml"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("limit_unused"), std::string::npos) << bad.output;

  testing::write_bytes(dir / "cfg.yaml",
                       "model: lenet5\nbatch_size: 100\nsolver: adam\nlearn_rate: 0.001\n"
                       "max_epochs: 1\ndata_options: {limit: 300}\n");
  auto r =
      run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--out", dir / "run", "--config",
                  dir / "cfg.yaml", "--batch-size", "50", "--quiet", "--env", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto spec = core::load_yaml_file(dir / "run/spec.yaml");
  EXPECT_EQ(spec["model"], "lenet5");
  EXPECT_EQ(spec["options"]["solver"], "adam");
  EXPECT_EQ(spec["options"]["batch_size"], 50);
  auto summary = nlohmann::json::parse(core::read_file(dir / "run/summary.json"));
  EXPECT_EQ(summary["iterations"], 6);  // 300 images / 50
}

TEST(CliConfigTest, AcceptsFlagNamesAsKeys) {
  // docs/cli.md: keys are the flag names with '_'; `epochs` is --epochs
  // (the option max_epochs), `env` is --env.
  testing::TempDir dir;
  testing::write_bytes(dir / "cfg.yaml",
                       "epochs: 1\nbatch-size: 100\nenv: cpu\ndata_options: {limit: 200}\n");
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--out", dir / "run",
                       "--config", dir / "cfg.yaml", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto spec = core::load_yaml_file(dir / "run/spec.yaml");
  EXPECT_EQ(spec["options"]["max_epochs"], 1);
  EXPECT_EQ(spec["options"]["batch_size"], 100);
  EXPECT_EQ(spec["options"]["execution_environment"], "cpu");
  EXPECT_FALSE(spec["options"].contains("epochs")) << spec.dump();
}

// Regression: data_options keys were never checked; unknown or hyphenated
// keys were silently ignored and a wrong type was a raw JSON-library error.
TEST(CliConfigTest, DataOptionsAreCheckedNamingTheFileAndKey) {
  testing::TempDir dir;
  auto train_with = [&](const std::string& yaml) {
    testing::write_bytes(dir / "cfg.yaml", yaml);
    fs::remove_all(dir / "run");
    return run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--out", dir / "run",
                       "--config", dir / "cfg.yaml", "--quiet", "--env", "cpu"});
  };
  for (const char* yaml :
       {"data_options: {rand_x_reflektion: true}\n", "data_options: {loader_threads: two}\n",
        "data_options: {random_resized_crop: -5}\n"}) {
    auto r = train_with(yaml);
    EXPECT_EQ(r.exit_code, 2) << yaml << r.output;
    EXPECT_NE(r.output.find("cfg.yaml"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("json.exception"), std::string::npos) << r.output;
  }
  EXPECT_NE(train_with("data_options: {foo: 1}\n").output.find("unknown data option 'foo'"),
            std::string::npos);
  // Hyphenated keys, inside data_options or at the top level, are the flags'.
  auto r = train_with("epochs: 1\nbatch-size: 100\ndata_options: {per-class: 20}\nlimit: 150\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto summary = nlohmann::json::parse(core::read_file(dir / "run/summary.json"));
  EXPECT_EQ(summary["images_seen"], 150);
}

TEST(CliInfoTest, ReportsDevicesAndThreads) {
  testing::TempDir dir;
  auto r = run_gpulab({"info", "--json", dir / "info.json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(core::read_file(dir / "info.json"));
  EXPECT_EQ(j["threads"].get<int>(), static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_FALSE(j["libtorch_version"].get<std::string>().empty());
}

}  // namespace gpulab
