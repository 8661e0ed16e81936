// Every bad input gets one clear line naming what is wrong, exit code 2 (or 1
// for a runtime failure), never a crash signal.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>

#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

class CliBadInputTest : public ::testing::Test {
 protected:
  // Runs `gpulab train --data DATA --out <tmp>/run ARGS` and checks the exit
  // code and that the output contains every `needles` string.
  void expect_train_fails(const std::string& data, std::vector<std::string> args, int code,
                          const std::vector<std::string>& needles) {
    std::vector<std::string> full = {"train",    "--data", data,    "--out", dir_ / "run",
                                     "--epochs", "1",      "--env", "cpu"};
    full.insert(full.end(), args.begin(), args.end());
    auto r = run_gpulab(full);
    EXPECT_EQ(r.signal, 0) << "crashed: " << r.output;
    EXPECT_EQ(r.exit_code, code) << r.output;
    for (const auto& n : needles)
      EXPECT_NE(r.output.find(n), std::string::npos) << "'" << n << "' not in: " << r.output;
  }
  // A small valid IDX folder to corrupt.
  std::string idx_folder(const std::string& name) {
    std::string dir = dir_ / name;
    testing::write_idx_split(dir, "train", torch::randint(0, 255, {64, 28, 28}).to(torch::kUInt8),
                             torch::randint(0, 10, {64}), false);
    return dir;
  }
  testing::TempDir dir_;
};

TEST_F(CliBadInputTest, MissingDataPath) {
  expect_train_fails(dir_ / "nope", {}, 2, {"does not exist", "nope"});
}

TEST_F(CliBadInputTest, WrongIdxMagic) {
  std::string d = idx_folder("magic");
  // Swap: the labels file where the images file should be.
  fs::copy_file(d + "/train-labels-idx1-ubyte", d + "/train-images-idx3-ubyte",
                fs::copy_options::overwrite_existing);
  expect_train_fails(d, {}, 2, {"expected magic 2051", "train-images-idx3-ubyte", "labels file"});
}

TEST_F(CliBadInputTest, TruncatedIdxFile) {
  std::string d = idx_folder("trunc");
  fs::resize_file(d + "/train-images-idx3-ubyte", 1000);
  expect_train_fails(d, {}, 2, {"truncated", "train-images-idx3-ubyte"});
}

TEST_F(CliBadInputTest, CorruptGzipFile) {
  std::string d = dir_ / "gz";
  testing::write_idx_split(d, "train", torch::zeros({8, 4, 4}, torch::kUInt8), torch::zeros({8}),
                           true);
  std::string bytes = testing::read_bytes(d + "/train-images-idx3-ubyte.gz");
  testing::write_bytes(d + "/train-images-idx3-ubyte.gz", bytes.substr(0, bytes.size() / 2));
  expect_train_fails(d, {}, 2, {"gzip", "train-images-idx3-ubyte.gz"});
}

TEST_F(CliBadInputTest, ImageLabelCountMismatch) {
  std::string d = dir_ / "mismatch";
  testing::write_idx_split(d, "train", torch::zeros({10, 4, 4}, torch::kUInt8), torch::zeros({10}),
                           false);
  testing::write_bytes(d + "/train-labels-idx1-ubyte",
                       testing::idx_bytes({9}, std::vector<uint8_t>(9, 0)));
  expect_train_fails(d, {}, 2, {"10 images", "9 labels"});
}

TEST_F(CliBadInputTest, EmptyClassFolder) {
  std::string d = dir_ / "folders";
  testing::write_pnm(d + "/cat/a.pgm", torch::zeros({1, 8, 8}, torch::kUInt8));
  fs::create_directories(d + "/dog");
  expect_train_fails(d, {}, 2, {"dog", "holds no images"});
}

TEST_F(CliBadInputTest, UndecodableImageIsNamedOrSkipped) {
  std::string d = dir_ / "bad_image";
  for (int i = 0; i < 8; ++i) {
    testing::write_pnm(d + "/a/" + std::to_string(i) + ".pgm",
                       torch::full({1, 8, 8}, i, torch::kUInt8));
    testing::write_pnm(d + "/b/" + std::to_string(i) + ".pgm",
                       torch::full({1, 8, 8}, 200 + i, torch::kUInt8));
  }
  testing::write_bytes(d + "/b/broken.png", "\x89PNG\r\n\x1a\n but then nothing");
  expect_train_fails(d, {}, 2, {"broken.png", "--skip-bad-files"});
  auto r = run_gpulab({"train", "--data", d, "--out", dir_ / "skip", "--epochs", "1", "--model",
                       "lenet5", "--image-size", "12x12", "--skip-bad-files", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Skipped 1 undecodable"), std::string::npos) << r.output;
}

TEST_F(CliBadInputTest, UnknownModelListsTheValidOnes) {
  expect_train_fails(testing::fashion_mnist_dir(), {"--model", "vgg99"}, 2,
                     {"vgg99", "basic_cnn", "lenet5"});
}

TEST_F(CliBadInputTest, UnknownSolverListsTheValidOnes) {
  expect_train_fails(testing::fashion_mnist_dir(), {"--solver", "lbfgs"}, 2,
                     {"lbfgs", "sgdm, adam, rmsprop"});
}

TEST_F(CliBadInputTest, NonPositiveBatchSizeAndEpochs) {
  expect_train_fails(testing::fashion_mnist_dir(), {"--batch-size", "0"}, 2,
                     {"batch size must be positive"});
  expect_train_fails(testing::fashion_mnist_dir(), {"--epochs", "-3"}, 2,
                     {"epochs must be positive"});
}

TEST_F(CliBadInputTest, UnwritableOutputFolder) {
  testing::write_bytes(dir_ / "a_file", "x");
  auto r =
      run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--out", dir_ / "a_file/run"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("a_file/run"), std::string::npos) << r.output;
}

TEST_F(CliBadInputTest, DivergingLossExitsOneNamingTheIteration) {
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "512", "--out",
                       dir_ / "nan", "--model", "lenet5", "--learn-rate", "1e12", "--epochs", "2",
                       "--env", "cpu", "--checkpoint-unit", "iteration"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("diverged"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("at iteration"), std::string::npos) << r.output;
}

TEST_F(CliBadInputTest, UnavailableEnvironmentsSayWhy) {
  expect_train_fails(testing::fashion_mnist_dir(), {"--env", "multi-gpu", "--limit", "64"}, 1,
                     {"multi-gpu"});
  expect_train_fails(testing::fashion_mnist_dir(), {"--env", "moon"}, 2,
                     {"moon", "auto, cpu, gpu"});
}

TEST_F(CliBadInputTest, UnknownFlagIsBadUsage) {
  auto r = run_gpulab({"train", "--data", "x", "--out", dir_ / "r", "--colour", "blue"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST_F(CliBadInputTest, EvaluateWithAMissingModelNamesIt) {
  auto r =
      run_gpulab({"evaluate", "--model", dir_ / "no_run", "--data", testing::fashion_mnist_dir()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no_run"), std::string::npos) << r.output;
}

}  // namespace gpulab
