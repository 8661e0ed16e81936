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
