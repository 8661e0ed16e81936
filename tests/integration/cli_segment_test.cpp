// Segmentation through the CLI on generated scenes (Fashion-MNIST objects
// over Debian's photos): ERFNet and DeepLabv3+ learn them, evaluate reports
// MATLAB's metrics, predict writes label maps and overlays.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <tuple>

#include "examples/segmentation/scene_generator.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

// A network that calls every pixel background scores about 0.78 background
// IoU, 1/11 = 0.091 mean accuracy and 0.071 mean IoU on these scenes; these
// runs reach 0.85-0.87, 0.16 and 0.09-0.12 (seed 1, 2 threads).
constexpr double BACKGROUND_FLOOR = 0.80, MEAN_ACCURACY_FLOOR = 0.12, MIOU_FLOOR = 0.08;

class CliSegmentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    scenes_ = *dir_ / "scenes";
    examples::write_scenes(scenes_, examples::SceneOptions()
                                        .count(150)
                                        .width(64)
                                        .height(48)
                                        .min_objects(1)
                                        .max_objects(2)
                                        .min_scale(0.5)
                                        .max_scale(0.9)
                                        .seed(5)
                                        .fashion_mnist_dir(testing::fashion_mnist_dir()));
  }
  static void TearDownTestSuite() { delete dir_; }

  // Trains `model` on the scenes' train split (validation: split val).
  static testing::CommandResult train(const std::string& model, const std::string& out,
                                      const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        "train", "--task", "segment", "--model", model,    "--data", scenes_,
        "--out", out,      "--env",   "cpu",     "--seed", "1",      "--verbose-frequency",
        "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_gpulab(args);
  }

  static nlohmann::json evaluate(const std::string& run, const std::string& json) {
    const auto r = run_gpulab({"evaluate", "--model", run, "--data", scenes_, "--json", json});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("MeanBFScore"), std::string::npos) << r.output;
    nlohmann::json j = nlohmann::json::parse(core::read_file(json));
    std::printf("%s: background IoU %s, %s\n", run.c_str(), j["classes"][0]["iou"].dump().c_str(),
                j["dataset"].dump().c_str());
    return j;
  }

  static testing::TempDir* dir_;
  static std::string scenes_;
};
testing::TempDir* CliSegmentTest::dir_ = nullptr;
std::string CliSegmentTest::scenes_;

TEST_F(CliSegmentTest, ErfnetLearnsTheScenesAndEvaluatePrintsMatlabsMetrics) {
  const std::string run = *dir_ / "erfnet";
  const auto r = train("erfnet", run,
                       {"--epochs", "25", "--batch-size", "8", "--solver", "adam", "--learn-rate",
                        "1e-3", "--class-weights", "median-frequency"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PixelCount"), std::string::npos) << r.output;  // countEachLabel
  EXPECT_NE(r.output.find("Mean IoU"), std::string::npos) << r.output;
  const nlohmann::json eval = evaluate(run, *dir_ / "erfnet.json");
  const nlohmann::json& m = eval["dataset"];
  // Floors under what this run reaches (docs/segmentation.md): an untrained
  // network, or one that calls every pixel background, stays under them.
  EXPECT_GT(eval["classes"][0]["iou"].get<double>(), BACKGROUND_FLOOR) << eval.dump();
  EXPECT_GT(m["MeanAccuracy"].get<double>(), MEAN_ACCURACY_FLOOR) << eval.dump();
  EXPECT_GT(m["MeanIoU"].get<double>(), MIOU_FLOOR) << eval.dump();
  EXPECT_EQ(eval["classes"].size(), 11u);
  EXPECT_EQ(eval["confusion"].size(), 11u);
  EXPECT_FALSE(eval["images"].empty());
}

TEST_F(CliSegmentTest, DeepLabV3PlusLearnsTheScenes) {
  const std::string run = *dir_ / "deeplab";
  const auto r = train("deeplabv3plus", run,
                       {"--epochs", "15", "--batch-size", "8", "--solver", "adam", "--learn-rate",
                        "1e-3", "--rand-x-reflection", "--rand-x-translation", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("image and label map together"), std::string::npos) << r.output;
  const nlohmann::json eval = evaluate(run, *dir_ / "deeplab.json");
  EXPECT_GT(eval["classes"][0]["iou"].get<double>(), BACKGROUND_FLOOR) << eval.dump();
  EXPECT_GT(eval["dataset"]["MeanAccuracy"].get<double>(), MEAN_ACCURACY_FLOOR) << eval.dump();
  EXPECT_GT(eval["dataset"]["MeanIoU"].get<double>(), MIOU_FLOOR) << eval.dump();
}

TEST_F(CliSegmentTest, PredictWritesALabelMapAndAnOverlayAtTheImagesSize) {
  // Its own short run: ctest runs every test in a process of its own.
  const std::string run = *dir_ / "erfnet-predict";
  const auto t = train("erfnet", run, {"--epochs", "1", "--batch-size", "8"});
  ASSERT_EQ(t.exit_code, 0) << t.output;
  // A 96x64 image (not the training size): fully convolutional, kept as is.
  const cv::Mat big = cv::imread(scenes_ + "/images/scene_00000.png");
  cv::Mat resized;
  cv::resize(big, resized, cv::Size(96, 64));
  const std::string input = *dir_ / "photo.png";
  cv::imwrite(input, resized);
  const std::string out = *dir_ / "predicted";
  const auto r = run_gpulab({"predict", "--model", run, "--input", input, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const cv::Mat labels = cv::imread(out + "/photo_labels.png", cv::IMREAD_UNCHANGED);
  const cv::Mat overlay = cv::imread(out + "/photo_overlay.png");
  ASSERT_FALSE(labels.empty()) << r.output;
  EXPECT_EQ(labels.cols, 96);
  EXPECT_EQ(labels.rows, 64);
  EXPECT_EQ(labels.channels(), 1);
  double max_id = 0;
  cv::minMaxLoc(labels, nullptr, &max_id);
  EXPECT_LT(max_id, 11);
  EXPECT_EQ(overlay.cols, 96);
}

TEST_F(CliSegmentTest, ErfnetRefusesAnInputSizeThatIsNotAMultipleOfEight) {
  const auto r = train("erfnet", *dir_ / "bad", {"--epochs", "1", "--image-size", "44x60"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("multiple"), std::string::npos) << r.output;
}

TEST_F(CliSegmentTest, CityscapesAndCamVidLayoutsTrainToo) {
  for (const auto layout : {examples::SceneLayout::kCityscapes, examples::SceneLayout::kCamVid}) {
    const std::string data = *dir_ / examples::scene_layout_name(layout);
    examples::write_scenes(
        data,
        examples::SceneOptions().count(12).width(32).height(24).layout(layout).fashion_mnist_dir(
            testing::fashion_mnist_dir()));
    const std::string run = *dir_ / (std::string("run-") + examples::scene_layout_name(layout));
    const auto r = run_gpulab({"train", "--task", "segment", "--model", "erfnet", "--data", data,
                               "--out", run, "--env", "cpu", "--epochs", "1", "--batch-size", "4"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto e = run_gpulab({"evaluate", "--model", run, "--data", data});
    ASSERT_EQ(e.exit_code, 0) << e.output;
    if (layout == examples::SceneLayout::kCityscapes) {
      EXPECT_NE(r.output.find("cityscapes layout"), std::string::npos) << r.output;
      EXPECT_NE(e.output.find("motorcycle"), std::string::npos) << e.output;  // 19 classes
    } else {
      EXPECT_NE(r.output.find("camvid layout"), std::string::npos) << r.output;
    }
  }
}

TEST_F(CliSegmentTest, TwoRanksValidateAsOneProcessEvaluates) {
  // Validation under `--env parallel` sums each rank's confusion matrix: the
  // final validation of a two-rank run equals one process evaluating the
  // same model on the same images.
  const std::string run = *dir_ / "parallel";
  const std::string g = testing::gpulab_binary();
  const auto r = testing::run_shell(
      g + " launch -n 2 -- " + g + " train --task segment --model erfnet --data " + scenes_ +
      " --out " + run + " --env parallel --epochs 1 --batch-size 8 --limit 64 --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string last;
  {
    std::istringstream history(core::read_file(run + "/history.jsonl"));
    for (std::string line; std::getline(history, line);) {
      if (!line.empty()) last = line;
    }
  }
  const nlohmann::json trained = nlohmann::json::parse(last);
  // The scenes' val split as the test split of a copy.
  const std::string copy = *dir_ / "scenes-val";
  fs::copy(scenes_, copy, fs::copy_options::recursive);
  fs::copy_file(copy + "/splits/val.txt", copy + "/splits/test.txt",
                fs::copy_options::overwrite_existing);
  const auto e =
      run_gpulab({"evaluate", "--model", run, "--data", copy, "--json", *dir_ / "v.json"});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  const nlohmann::json m = nlohmann::json::parse(core::read_file(*dir_ / "v.json"))["metrics"];
  EXPECT_DOUBLE_EQ(trained["validation_global_accuracy"].get<double>(),
                   m["global_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(trained["validation_mean_iou"].get<double>(), m["mean_iou"].get<double>());
  EXPECT_DOUBLE_EQ(trained["validation_weighted_iou"].get<double>(),
                   m["weighted_iou"].get<double>());
  EXPECT_NEAR(trained["validation_loss"].get<double>(), m["loss"].get<double>(), 1e-4);
}

TEST_F(CliSegmentTest, PredictScoresAreEachPixelsSoftmaxAndPeakAtItsLabelId) {
  const std::string run = *dir_ / "erfnet-scores";
  const auto t = train("erfnet", run, {"--epochs", "1", "--batch-size", "8"});
  ASSERT_EQ(t.exit_code, 0) << t.output;
  // A scene at the training size (64x48) and one at 96x64: each image's
  // scores are at its own output size.
  const std::string input = *dir_ / "scores-input";
  fs::create_directories(input);
  fs::copy_file(scenes_ + "/images/scene_00001.png", input + "/a.png");
  cv::Mat resized;
  cv::resize(cv::imread(scenes_ + "/images/scene_00002.png"), resized, cv::Size(96, 64));
  cv::imwrite(input + "/b.png", resized);
  const std::string out = *dir_ / "scores-out";
  const auto r = run_gpulab({"predict", "--model", run, "--input", input, "--out", out, "--scores",
                             "--json", *dir_ / "scores.json", "--batch-size", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json records = nlohmann::json::parse(core::read_file(*dir_ / "scores.json"));
  ASSERT_EQ(records.size(), 2u);
  const std::vector<std::tuple<std::string, int64_t, int64_t>> expected = {{"a", 48, 64},
                                                                           {"b", 64, 96}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& [stem, height, width] = expected[i];
    SCOPED_TRACE(stem);
    const std::string path = out + "/" + stem + "_scores.safetensors";
    EXPECT_EQ(records[i]["scores_file"], path);
    const models::SafetensorsContent file = models::load_safetensors(path);
    const at::Tensor scores = file.tensors.at("scores");
    EXPECT_EQ(scores.scalar_type(), torch::kFloat32);
    ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{11, height, width}));
    EXPECT_TRUE(torch::allclose(scores.sum(0), torch::ones({height, width}), 0, 1e-5));
    EXPECT_EQ(nlohmann::json::parse(file.metadata.at("classes")).size(), 11u);
    EXPECT_EQ(file.metadata.at("source"), input + "/" + stem + ".png");
    // The label PNG's id is each pixel's highest score (exactly), and the
    // argmax but for float32 ties.
    cv::Mat png = cv::imread(out + "/" + stem + "_labels.png", cv::IMREAD_UNCHANGED);
    ASSERT_EQ(png.type(), CV_8UC1);
    const at::Tensor labels =
        torch::from_blob(png.data, {png.rows, png.cols}, torch::kUInt8).to(torch::kInt64);
    EXPECT_TRUE(
        torch::equal(scores.gather(0, labels.unsqueeze(0)).squeeze(0), std::get<0>(scores.max(0))));
    EXPECT_GE(scores.argmax(0).eq(labels).to(torch::kFloat64).mean().item<double>(), 0.999);
  }
}

// ERFNet's two-stage recipe (Eromera/erfnet_pytorch): the encoder alone on
// labels at 1/8 resolution, then the whole network on the trained encoder with
// a fresh decoder. Stage two takes the stage-one model file, or a file holding
// only encoder tensors, and says the decoder is fresh.
TEST_F(CliSegmentTest, ErfnetTrainsTheEncoderAloneThenTheWholeNetworkOnIt) {
  const std::string first = *dir_ / "erfnet-stage-one";
  const auto t = train("erfnet", first,
                       {"--epochs", "2", "--batch-size", "8", "--model-option",
                        "encoder_only=true", "--solver", "adam", "--learn-rate", "1e-3"});
  ASSERT_EQ(t.exit_code, 0) << t.output;
  const auto model = models::load_safetensors(first + "/model.safetensors").tensors;
  const auto second = train("erfnet", *dir_ / "erfnet-stage-two",
                            {"--weights", first + "/model.safetensors", "--model-option",
                             "encoder_only=false", "--epochs", "1", "--batch-size", "8"});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("(gpulab), encoder only: decoder freshly initialised"),
            std::string::npos)
      << second.output;

  models::SafetensorsContent encoder;
  for (const auto& [name, tensor] : model) {
    if (name.rfind("encoder.", 0) == 0) encoder.tensors[name] = tensor;
  }
  ASSERT_EQ(encoder.tensors.size(), 257u);  // the reference's encoder state dict
  const std::string file = *dir_ / "erfnet-encoder.safetensors";
  models::save_safetensors(file, encoder);
  const auto r = train("erfnet", *dir_ / "erfnet-stage-two-b",
                       {"--weights", file, "--epochs", "1", "--batch-size", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Initial weights: '" + file +
                          "' (safetensors), encoder only: decoder freshly initialised"),
            std::string::npos)
      << r.output;
}

}  // namespace gpulab
