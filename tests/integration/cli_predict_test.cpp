// predict runs any model over bounded batches: memory does not grow with the
// number of input files (5,000 images), and version-1 model files (made
// before the task-generic core) still load and predict.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fmt/format.h>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/data/idx_datastore.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

namespace {

// Peak resident memory (MiB) of `gpulab ARGS` run as a child of a Python
// process (its RUSAGE_CHILDREN is that child's alone).
double peak_rss_mb(const std::vector<std::string>& args, testing::CommandResult* result) {
  std::string argv = "['" + testing::gpulab_binary() + "'";
  for (const auto& a : args) argv += ", '" + a + "'";
  argv += "]";
  *result = testing::run_shell(
      "python3 -c \"import resource, subprocess, sys; "
      "r = subprocess.run(" +
      argv +
      ", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
      "sys.stderr.write(r.stderr.decode()); "
      "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
      "sys.exit(r.returncode)\"");
  const auto at = result->output.find("PEAK_KIB ");
  return at == std::string::npos ? -1 : std::stod(result->output.substr(at + 9)) / 1024.0;
}

}  // namespace

TEST(CliPredictTest, PeakMemoryDoesNotGrowWithTheNumberOfFiles) {
  testing::TempDir dir;
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "256", "--model",
                       "basic_cnn", "--nf", "4", "--out", dir / "run", "--epochs", "1", "--env",
                       "cpu", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  torch::manual_seed(0);
  const at::Tensor pixels = torch::randint(0, 256, {5000, 1, 28, 28}, torch::kUInt8);
  fs::create_directories(dir / "few");
  fs::create_directories(dir / "many");
  for (int64_t i = 0; i < 5000; ++i) {
    const std::string name = fmt::format("img{:05d}.pgm", i);
    testing::write_pnm(dir / ("many/" + name), pixels[i]);
    if (i < 500) fs::copy_file(dir / ("many/" + name), dir / ("few/" + name));
  }
  testing::CommandResult few, many;
  const double few_mb = peak_rss_mb({"predict", "--model", dir / "run", "--input", dir / "few",
                                     "--json", dir / "few.json", "--env", "cpu"},
                                    &few);
  const double many_mb = peak_rss_mb({"predict", "--model", dir / "run", "--input", dir / "many",
                                      "--json", dir / "many.json", "--env", "cpu"},
                                     &many);
  ASSERT_EQ(few.exit_code, 0) << few.output;
  ASSERT_EQ(many.exit_code, 0) << many.output;
  EXPECT_EQ(nlohmann::json::parse(core::read_file(dir / "many.json")).size(), 5000u);
  // Ten times the files: the decoded images would add 3.7 MiB and their
  // float copies 15 MiB if they were all held; the bound leaves room for the
  // JSON of 5,000 predictions only.
  EXPECT_LT(many_mb, few_mb + 24) << "500 files: " << few_mb << " MiB, 5,000: " << many_mb;
  EXPECT_LT(many_mb, 1024) << many_mb;
}

TEST(CliPredictTest, AVersionOneModelFileStillLoadsAndPredicts) {
  const std::string model =
      std::string(GPULAB_SOURCE_DIR) + "/tests/models/fixtures/model_v1.safetensors";
  const std::string expected =
      std::string(GPULAB_SOURCE_DIR) + "/tests/models/fixtures/model_v1_predictions.json";
  testing::TempDir dir;
  // The first 4 Fashion-MNIST test images, as the fixture's predictions were made.
  const at::Tensor images =
      data::load_idx_folder(testing::fashion_mnist_dir(), data::IdxSplit::kTest).images;
  for (int64_t i = 0; i < 4; ++i) testing::write_pnm(dir / fmt::format("t{}.pgm", i), images[i]);
  auto r = run_gpulab({"predict", "--model", model, "--input", dir.path(), "--top-k", "2", "--json",
                       dir / "p.json", "--env", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto got = nlohmann::json::parse(core::read_file(dir / "p.json"));
  const auto want = nlohmann::json::parse(core::read_file(expected));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i]["top"][0]["label"], want[i]["top"][0]["label"]) << i;
    for (size_t c = 0; c < got[i]["scores"].size(); ++c) {
      EXPECT_NEAR(got[i]["scores"][c].get<double>(), want[i]["scores"][c].get<double>(), 1e-5);
    }
  }
  r = run_gpulab({"evaluate", "--model", model, "--data", testing::fashion_mnist_dir(), "--limit",
                  "200", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Accuracy:"), std::string::npos) << r.output;
}

TEST(CliPredictTest, ScoresFlagOnAClassifierSaysWhereItsScoresAre) {
  testing::TempDir dir;
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "64", "--model",
                       "basic_cnn", "--nf", "4", "--out", dir / "run", "--epochs", "1", "--env",
                       "cpu", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  testing::write_pnm(dir / "x.pgm", torch::zeros({1, 28, 28}, torch::kUInt8));
  r = run_gpulab({"predict", "--model", dir / "run", "--input", dir / "x.pgm", "--scores", "--out",
                  dir / "out", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is a classifier"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--json FILE"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out/x_scores.safetensors"));
}

}  // namespace gpulab
