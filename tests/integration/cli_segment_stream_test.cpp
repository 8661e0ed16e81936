// Segmentation training that streams image/label-map pairs through the
// decode threads: random crops, flips and colour jitter on both, the images'
// own size recorded for evaluation, and an exact resume.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "examples/segmentation/scene_generator.h"
#include "gpulab/core/atomic_file.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace {
using testing::run_gpulab;

class CliSegmentStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    scenes_ = *dir_ / "scenes";
    examples::write_scenes(
        scenes_, examples::SceneOptions().count(60).width(64).height(48).seed(9).fashion_mnist_dir(
                     testing::fashion_mnist_dir()));
  }
  static void TearDownTestSuite() { delete dir_; }

  // Streams the scenes' train split with crops, reflection and colour jitter.
  static testing::CommandResult train_streaming(const std::string& out,
                                                const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"train",
                                     "--task",
                                     "segment",
                                     "--model",
                                     "erfnet",
                                     "--data",
                                     scenes_,
                                     "--out",
                                     out,
                                     "--env",
                                     "cpu",
                                     "--seed",
                                     "1",
                                     "--batch-size",
                                     "8",
                                     "--loader",
                                     "stream",
                                     "--random-resized-crop",
                                     "32",
                                     "--crop-scale",
                                     "0.5,1",
                                     "--augment",
                                     "x-reflection,color-jitter"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_gpulab(args);
  }

  static testing::TempDir* dir_;
  static std::string scenes_;
};

testing::TempDir* CliSegmentStreamTest::dir_ = nullptr;
std::string CliSegmentStreamTest::scenes_;

}  // namespace

TEST_F(CliSegmentStreamTest, CropsTrainOnPatchesAndTheModelKeepsTheImagesSize) {
  const std::string run = *dir_ / "crops";
  const auto r = train_streaming(run, {"--epochs", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("streaming), 36 images to 3x32x32"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("in the decode threads"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Validation: 12 images at 48x64"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PixelCount"), std::string::npos) << r.output;
  // Evaluation and prediction default to the images' size, not the crop's.
  const auto e = run_gpulab({"evaluate", "--model", run, "--data", scenes_});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_NE(e.output.find("12 images at 48x64"), std::string::npos) << e.output;
}

TEST_F(CliSegmentStreamTest, AResumedStreamingRunEndsWithTheSameWeights) {
  const std::string straight = *dir_ / "straight", resumed = *dir_ / "resumed";
  const auto a = train_streaming(straight, {"--epochs", "2"});
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto first = train_streaming(resumed, {"--epochs", "1"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto rest = train_streaming(resumed, {"--epochs", "2", "--resume"});
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  testing::expect_same_weights(straight + "/model.safetensors", resumed + "/model.safetensors", 0,
                               0);
}

TEST_F(CliSegmentStreamTest, ResidentDataRefusesCropsWithAHint) {
  const auto r =
      run_gpulab({"train", "--task", "segment", "--data", scenes_, "--out", *dir_ / "bad", "--env",
                  "cpu", "--epochs", "1", "--loader", "resident", "--random-resized-crop", "32"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("random_resized_crop"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("streaming loader"), std::string::npos) << r.output;
}

}  // namespace gpulab
