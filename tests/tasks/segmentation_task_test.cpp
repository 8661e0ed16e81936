// The segment task: class weights, the pixel loss with the ignore label, its
// options and its registration.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/infer/output_decoders.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/tasks/class_weights.h"
#include "gpulab/tasks/segmentation.h"
#include "gpulab/tasks/task_registry.h"
#include "tests/support/test_util.h"

namespace gpulab::tasks {
namespace {

data::PixelLabelCounts seg_pixel_counts() {
  // Class 0: 60 pixels in images of 100 pixels in all; class 1: 10 of 50;
  // class 2: 5 of 100; class 3 absent.
  return {{60, 10, 5, 0}, {100, 50, 100, 0}};
}

SegmentationTask set_up_segment(const std::string& weights, const data::PixelLabelCounts& counts) {
  SegmentationOptions o;
  o.class_weights = weights;
  SegmentationTask task("erfnet", nlohmann::json::object(), o);
  TaskSetup setup;
  setup.data.labels = data::LabelSpec::from_names({"a", "b", "c", "d"});
  setup.data.labels.ignore_value = 255;
  setup.data.label_counts = counts;
  task.setup(setup);
  return task;
}

}  // namespace

TEST(ClassWeightsTest, MedianFrequencyIsMatlabsCamVidFormula) {
  // freq = 0.6, 0.2, 0.05 (class 3 absent); median 0.2.
  const std::vector<double> w = median_frequency_weights(seg_pixel_counts());
  ASSERT_EQ(w.size(), 4u);
  EXPECT_NEAR(w[0], 0.2 / 0.6, 1e-12);
  EXPECT_NEAR(w[1], 1.0, 1e-12);
  EXPECT_NEAR(w[2], 4.0, 1e-12);
  EXPECT_EQ(w[3], 0.0);
}

TEST(ClassWeightsTest, EnetIsOneOverLogOfCPlusFrequency) {
  // p = 60/75, 10/75, 5/75.
  const std::vector<double> w = enet_weights(seg_pixel_counts(), 1.10);
  EXPECT_NEAR(w[0], 1 / std::log(1.10 + 0.8), 1e-12);
  EXPECT_NEAR(w[1], 1 / std::log(1.10 + 10.0 / 75), 1e-12);
  EXPECT_NEAR(w[2], 1 / std::log(1.10 + 5.0 / 75), 1e-12);
  EXPECT_EQ(w[3], 0.0);
}

TEST(ClassWeightsTest, AWeightFileNeedsOneWeightPerClass) {
  testing::TempDir dir;
  testing::write_bytes(dir / "w.txt", "1\n2.5\n0\n4\n");
  EXPECT_EQ(class_weights(dir / "w.txt", {}, 4), (std::vector<double>{1, 2.5, 0, 4}));
  testing::write_bytes(dir / "w.json", "[1, 2]");
  const std::string message = testing::error_of([&] { class_weights(dir / "w.json", {}, 4); });
  EXPECT_NE(message.find("w.json"), std::string::npos) << message;
  EXPECT_NE(message.find("2 weights"), std::string::npos) << message;
  EXPECT_TRUE(class_weights("none", {}, 4).empty());
}

TEST(SegmentationTaskTest, TheLossIgnoresUnlabelledPixels) {
  const SegmentationTask task = set_up_segment("none", {});
  torch::manual_seed(0);
  const at::Tensor logits = torch::randn({2, 4, 3, 5});
  at::Tensor target = torch::randint(0, 4, {2, 3, 5}, torch::kInt64).to(torch::kUInt8);
  target[0][1][2] = 255;
  target[1][0][0] = 255;
  const float loss = task.loss(logits, {torch::zeros({2, 3, 3, 5}), target}).total.item<float>();
  // By hand: -log softmax at the target, averaged over the 28 labelled pixels.
  const at::Tensor logp = torch::log_softmax(logits, 1);
  double sum = 0;
  for (int b = 0; b < 2; ++b)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x) {
        const int t = target[b][y][x].item<int>();
        if (t != 255) sum -= logp[b][t][y][x].item<double>();
      }
  EXPECT_NEAR(loss, sum / 28, 1e-5);
}

TEST(SegmentationTaskTest, WeightedLossDividesByTheSumOfTheWeights) {
  const SegmentationTask task = set_up_segment("median-frequency", seg_pixel_counts());
  ASSERT_EQ(task.class_weights().size(), 4u);
  const at::Tensor logits = torch::zeros({1, 4, 1, 3});  // uniform: -log p = log 4 everywhere
  const at::Tensor target = torch::tensor({0, 2, 255}, torch::kUInt8).reshape({1, 1, 3});
  const float loss = task.loss(logits, {torch::zeros({1, 3, 1, 3}), target}).total.item<float>();
  // (w0 log4 + w2 log4) / (w0 + w2) = log 4: PyTorch's weighted mean.
  EXPECT_NEAR(loss, std::log(4.0), 1e-6);
  const at::Tensor skewed = torch::tensor({0, 2, 2}, torch::kUInt8).reshape({1, 1, 3});
  at::Tensor l2 = torch::zeros({1, 4, 1, 3});
  l2[0][0][0][0] = 2.0;  // pixel 0 (class 0) more confident
  const double p0 = std::exp(2.0) / (std::exp(2.0) + 3);
  const double w0 = 1.0 / 3, w2 = 4.0;
  const double expected = (-w0 * std::log(p0) + 2 * w2 * std::log(4.0)) / (w0 + 2 * w2);
  EXPECT_NEAR(task.loss(l2, {torch::zeros({1, 3, 1, 3}), skewed}).total.item<float>(), expected,
              1e-5);
}

TEST(SegmentationTaskTest, ABatchWithNoLabelledPixelHasZeroLoss) {
  const SegmentationTask task = set_up_segment("none", {});
  const at::Tensor target = torch::full({1, 2, 2}, 255, torch::kUInt8);
  EXPECT_EQ(task.loss(torch::randn({1, 4, 2, 2}), {torch::zeros({1, 3, 2, 2}), target})
                .total.item<float>(),
            0.0f);
}

TEST(SegmentationTaskTest, ATrainedModelsRecordedWeightsAreUsedAgain) {
  SegmentationOptions o;
  o.class_weights = "median-frequency";
  SegmentationTask task("erfnet", nlohmann::json::object(), o);
  TaskSetup setup;
  setup.data.labels = data::LabelSpec::from_names({"a", "b"});
  setup.recorded_metadata = {{"class_weights", {0.5, 2.0}}};
  task.setup(setup);  // no pixel counts: evaluate and predict
  EXPECT_EQ(task.class_weights(), (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(task.metadata()["class_weights"], nlohmann::json({0.5, 2.0}));
}

TEST(SegmentationTaskTest, IsRegisteredAndRejectsUnknownOptions) {
  EXPECT_EQ(resolve_task_name("Segment"), "segment");
  EXPECT_EQ(task_info("segment").default_model, "erfnet");
  const std::string message = testing::error_of([] {
    create_task("segment", {"erfnet", nlohmann::json::object(), {{"class_weight", "enet"}}});
  });
  EXPECT_NE(message.find("`class_weight`"), std::string::npos) << message;
  EXPECT_NE(message.find("class_weights"), std::string::npos) << message;
  const auto task = create_task("segment", {"erfnet", {}, {{"class_weights", "enet"}}});
  EXPECT_EQ(task->primary_metric(), "mean_iou");
  EXPECT_EQ(task->output_kind(), models::OutputKind::kLabelMap);
}

// A segmentation model's per-pixel scores (`gpulab predict --scores`); the
// decoders live in gpulab/infer, which has no test folder of its own yet.
TEST(SegmentationScoresTest, SoftmaxScoresSumToOneAndPeakAtTheLabelId) {
  torch::manual_seed(0);
  const at::Tensor logits = torch::randn({5, 7, 9}) * 4;
  const at::Tensor scores = infer::decode_softmax_scores(logits);
  EXPECT_EQ(scores.sizes(), logits.sizes());
  EXPECT_EQ(scores.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(scores.sum(0), torch::ones({7, 9}), 0, 1e-6));
  const at::Tensor labels = infer::decode_label_map(logits).to(torch::kInt64);
  EXPECT_TRUE(torch::equal(scores.argmax(0), labels));
  // Logits 1e-9 apart: float32 softmax ties them, but the label id's score
  // is still exactly the pixel's highest.
  const at::Tensor close = torch::tensor({0.0f, 1e-9f}).view({2, 1, 1});
  const at::Tensor tied = infer::decode_softmax_scores(close);
  const int64_t label = infer::decode_label_map(close).item<int64_t>();
  EXPECT_EQ(label, 1);
  EXPECT_EQ(tied[label].item<float>(), tied.max().item<float>());
  // A classifier's [classes] logits: the softmax its top-k comes from.
  const at::Tensor one = torch::tensor({1.0f, 3.0f, 2.0f});
  const infer::ClassScores top = infer::decode_class_scores(one, {"a", "b", "c"}, 1);
  EXPECT_TRUE(torch::allclose(infer::decode_softmax_scores(one), torch::tensor(top.scores)));
  EXPECT_EQ(top.label_index, 1);
  EXPECT_NE(testing::error_of([] {
              infer::decode_softmax_scores(torch::zeros({1, 2, 3, 4}));
            }).find("[1, 2, 3, 4]"),
            std::string::npos);
}

TEST(SegmentationScoresTest, AScoresFileReadsBackAsSafetensorsWithItsClassNames) {
  testing::TempDir dir;
  torch::manual_seed(1);
  const at::Tensor scores = infer::decode_softmax_scores(torch::randn({3, 4, 5}));
  const std::string path = dir / "street_scores.safetensors";
  infer::save_class_scores(path, scores, {"road", "car", "sky"}, "in/street.png");
  const models::SafetensorsContent read = models::load_safetensors(path);
  ASSERT_EQ(read.tensors.count("scores"), 1u);
  EXPECT_EQ(read.tensors.size(), 1u);
  EXPECT_TRUE(torch::equal(read.tensors.at("scores"), scores));
  EXPECT_EQ(read.metadata.at("format"), "gpulab.class_scores");
  EXPECT_EQ(read.metadata.at("format_version"), "1");
  EXPECT_EQ(read.metadata.at("dims"), "class,height,width");
  EXPECT_EQ(read.metadata.at("source"), "in/street.png");
  EXPECT_EQ(nlohmann::json::parse(read.metadata.at("classes")),
            nlohmann::json({"road", "car", "sky"}));
  // Written atomically: no temporary file is left beside it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
  const std::string message = testing::error_of([&] {
    infer::save_class_scores(path, scores, {"road", "car"}, "x.png");
  });
  EXPECT_NE(message.find("3 classes, but the model names 2"), std::string::npos) << message;
}

}  // namespace gpulab::tasks
