// Training through the streaming loader from an image folder with
// augmentation, bad files through the CLI, and `gpulab bench loader`.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

namespace {

// "red" and "blue" classes of noisy 16x16 RGB images: easy to learn, and
// invariant to the flips and shifts the tests turn on.
void make_colour_folder(const testing::TempDir& dir, int per_class) {
  torch::manual_seed(0);
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < per_class; ++i) {
      auto img = torch::randint(0, 80, {3, 16, 16}, torch::kUInt8);
      img[c == 0 ? 0 : 2].add_(150);
      testing::write_pnm(
          dir / (std::string(c == 0 ? "red" : "blue") + "/" + std::to_string(i) + ".ppm"), img);
    }
  }
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(core::read_file(path));
}

}  // namespace

TEST(CliLoaderTest, TrainsFromAnImageFolderWithAugmentationThroughTheStreamingLoader) {
  testing::TempDir dir;
  make_colour_folder(dir, 24);
  testing::TempDir runs;  // not inside the image folder: it would be a class
  const std::string run = runs / "run";
  // clang-format off
  auto r = run_gpulab({"train", "--data", dir.path(), "--out", run, "--model", "basic_cnn",
                       "--rand-x-reflection", "--rand-x-translation=-2,2", "--color-jitter", "0.1",
                       "--loader-threads", "2", "--prefetch", "2", "--val-split", "0.25",
                       "--epochs", "6", "--batch-size", "8", "--learn-rate", "0.02",
                       "--env", "cpu", "--threads", "1", "--seed", "1"});
  // clang-format on
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("streaming"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Waiting for data"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("blue"), std::string::npos);  // label counts
  auto summary = read_json(run + "/summary.json");
  ASSERT_TRUE(summary.contains("data_wait_share")) << summary.dump();
  EXPECT_GE(summary["data_wait_share"].get<double>(), 0.0);
  EXPECT_LE(summary["data_wait_share"].get<double>(), 1.0);
  EXPECT_EQ(summary["skipped_files"], 0);
  EXPECT_GE(summary["validation_accuracy"].get<double>(), 0.9) << summary.dump();
  std::ifstream history(run + "/history.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(history, line));
  EXPECT_TRUE(nlohmann::json::parse(line).contains("data_wait_share")) << line;
  // The resolved transforms are in the spec.
  EXPECT_NE(core::read_file(run + "/spec.yaml").find("rand_x_translation"), std::string::npos);
}

TEST(CliLoaderTest, ABadImageFailsWithExitCode2NamingItOrIsSkippedAndCounted) {
  testing::TempDir dir;
  make_colour_folder(dir, 6);
  testing::write_bytes(dir / "red/broken.ppm", "P6\n16 16\n255\nshort");
  testing::TempDir runs;
  std::vector<std::string> args = {
      "train",    "--data", dir.path(),     "--model", "basic_cnn", "--rand-x-reflection",
      "--epochs", "1",      "--batch-size", "4",       "--env",     "cpu",
      "--quiet"};
  auto fail_args = args;
  fail_args.insert(fail_args.end(), {"--out", runs / "run1"});
  auto failed = run_gpulab(fail_args);
  EXPECT_EQ(failed.exit_code, 2) << failed.output;
  EXPECT_NE(failed.output.find("broken.ppm"), std::string::npos) << failed.output;
  auto skip_args = args;
  skip_args.insert(skip_args.end(), {"--out", runs / "run2", "--skip-bad-files"});
  auto skipped = run_gpulab(skip_args);
  ASSERT_EQ(skipped.exit_code, 0) << skipped.output;
  EXPECT_EQ(read_json(runs / "run2/summary.json")["skipped_files"], 1);
}

TEST(CliLoaderTest, AStepOfOnlyBadFilesTrainsOnNothingUnderSkipBadFiles) {
  testing::TempDir dir;
  make_colour_folder(dir, 6);
  // Unshuffled, step 4 (of 2 images) is these two: digits sort before letters.
  testing::write_bytes(dir / "blue/aa_bad1.ppm", "P6\n16 16\n255\nshort");
  testing::write_bytes(dir / "blue/aa_bad2.ppm", "");
  testing::TempDir runs;
  auto r = run_gpulab({"train", "--data", dir.path(), "--model", "basic_cnn", "--rand-x-reflection",
                       "--epochs", "1", "--batch-size", "2", "--shuffle", "never", "--env", "cpu",
                       "--skip-bad-files", "--out", runs / "run"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Skipped 2 undecodable files"), std::string::npos) << r.output;
  auto summary = read_json(runs / "run/summary.json");
  EXPECT_EQ(summary["skipped_files"], 2);
  EXPECT_EQ(summary["iterations"], 7);  // 14 files / 2, the empty step included
}

// Regression: --val-limit was ignored when streaming.
TEST(CliLoaderTest, ValLimitCapsTheValidationFolderWhenStreaming) {
  testing::TempDir dir;
  make_colour_folder(dir, 6);
  testing::TempDir runs;
  auto r = run_gpulab({"train", "--data", dir.path(), "--val-data", dir.path(), "--val-limit", "5",
                       "--rand-x-reflection", "--epochs", "1", "--batch-size", "4", "--env", "cpu",
                       "--out", runs / "run"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Validation: 5 images"), std::string::npos) << r.output;
}

// Regression: grey images with RGB --weights failed when streaming ("the
// loader makes 1") and asked for --channels 3 otherwise; they now become RGB.
TEST(CliLoaderTest, GreyImagesAreConvertedToTheChannelsOfTheWeights) {
  testing::TempDir colour;
  make_colour_folder(colour, 6);
  testing::TempDir grey;
  for (const char* label : {"blue", "red"}) {
    for (int i = 0; i < 6; ++i) {
      testing::write_pnm(grey / (std::string(label) + "/" + std::to_string(i) + ".pgm"),
                         torch::full({1, 16, 16}, 40 * i, torch::kUInt8));
    }
  }
  testing::TempDir runs;
  auto pre = run_gpulab({"train", "--data", colour.path(), "--epochs", "1", "--batch-size", "4",
                         "--env", "cpu", "--quiet", "--out", runs / "rgb"});
  ASSERT_EQ(pre.exit_code, 0) << pre.output;
  const std::string weights = runs / "rgb/model.safetensors";
  auto streamed = run_gpulab({"train", "--data", grey.path(), "--weights", weights,
                              "--rand-x-reflection", "--epochs", "1", "--batch-size", "4", "--env",
                              "cpu", "--out", runs / "streamed"});
  ASSERT_EQ(streamed.exit_code, 0) << streamed.output;
  EXPECT_NE(streamed.output.find("images to 3x16x16"), std::string::npos) << streamed.output;
  auto resident = run_gpulab({"train", "--data", grey.path(), "--weights", weights, "--epochs", "1",
                              "--batch-size", "4", "--env", "cpu", "--out", runs / "resident"});
  ASSERT_EQ(resident.exit_code, 0) << resident.output;
  EXPECT_NE(resident.output.find("images of 3x16x16"), std::string::npos) << resident.output;
}

// Regression: evaluate resized whole images to the input size although the
// model was trained (and validated) on resized, centre-cropped ones, so its
// accuracy disagreed with training's validation accuracy on the same images.
TEST(CliLoaderTest, EvaluateAndPredictSeeImagesAsValidationDid) {
  testing::TempDir dir;
  make_colour_folder(dir, 8);
  testing::TempDir runs;
  const std::string run = runs / "run";
  auto r = run_gpulab({"train", "--data", dir.path(), "--val-data", dir.path(), "--resize", "24x24",
                       "--center-crop", "12", "--rand-x-reflection", "--epochs", "2",
                       "--batch-size", "4", "--env", "cpu", "--quiet", "--out", run});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto e = run_gpulab({"evaluate", "--model", run, "--data", dir.path(), "--env", "cpu", "--json",
                       runs / "eval.json"});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_NE(e.output.find("transformed as in validation"), std::string::npos) << e.output;
  EXPECT_NEAR(read_json(runs / "eval.json")["accuracy"].get<double>(),
              read_json(run + "/summary.json")["validation_accuracy"].get<double>(), 1e-9);
  // predict decodes files the same way, and skips a bad one when asked.
  testing::write_bytes(dir / "red/zz_broken.ppm", "P6\n16 16\n255\nshort");
  auto failed = run_gpulab({"predict", "--model", run, "--input", dir / "red", "--env", "cpu"});
  EXPECT_EQ(failed.exit_code, 2) << failed.output;
  auto p = run_gpulab({"predict", "--model", run, "--input", dir / "red", "--env", "cpu",
                       "--skip-bad-files", "--json", runs / "p.json"});
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_NE(p.output.find("Skipped undecodable file"), std::string::npos) << p.output;
  EXPECT_EQ(read_json(runs / "p.json").size(), 8u);
}

TEST(CliLoaderTest, BenchLoaderWritesImagesPerSecond) {
  testing::TempDir dir;
  make_colour_folder(dir, 8);
  const std::string json = dir / "loader.json";
  auto r = run_gpulab({"bench", "loader", "--data", dir.path(), "--threads", "2", "--batch-size",
                       "4", "--batches", "3", "--random-resized-crop", "12", "--rand-x-reflection",
                       "--json", json});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto out = read_json(json);
  EXPECT_GT(out["images_per_second"].get<double>(), 0) << out.dump();
  EXPECT_EQ(out["threads"], 2);
  EXPECT_EQ(out["batch_size"], 4);
  EXPECT_EQ(out["images"], 12);
}

}  // namespace gpulab
