// Segmentation metrics against a three-image, three-class fixture whose every
// value is worked out by hand below (gpulab's spec of MATLAB's
// evaluateSemanticSegmentation rules; docs/segmentation-metrics.md).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/tasks/segmentation_metrics.h"

// Helpers in a namespace of this file's own: unity builds join test files.
namespace gpulab::tasks::segmentation_metrics_test {
namespace {

// Classes a = 0, b = 1, c = 2; x = 255 = no label. Three 4x4 images:
//
//   image 0               image 1               image 2
//   truth    predicted    truth    predicted    truth    predicted
//   a a b b  a a b b      a a a a  c a a a      b b b b  b b b b
//   a a b b  a a b b      a a a a  a a a a      b b b b  b b b b
//   a a b b  a b b b      a a a a  a a a a      a a a a  b b a a
//   a a x b  a a a b      a a a a  a a a a      a a a a  a a a a
//
// x is in no count (image 0 has 15 labelled pixels); b is absent from image
// 1; c is absent from every truth map and predicted once (image 1).
//
// Confusion (rows true, columns predicted; a b c):
//   image 0: a [7 1 0]  b [0 7 0]  c [0 0 0]   15 px, 14 right
//   image 1: a [15 0 1] b [0 0 0]  c [0 0 0]   16 px, 15 right
//   image 2: a [6 2 0]  b [0 8 0]  c [0 0 0]   16 px, 14 right
//   set:     a [28 3 1] b [0 15 0] c [0 0 0]   47 px, 43 right
//
// Per image (Accuracy = TP/(TP+FN), IoU = TP/(TP+FP+FN), NaN left out):
//   image 0: GA 14/15; Acc a 7/8, b 7/7 -> MA 15/16; IoU a 7/(7+0+1) = 7/8,
//            b 7/(7+1+0) = 7/8 -> MIoU 7/8; WIoU 8/15*7/8 + 7/15*7/8 = 7/8.
//   image 1: GA 15/16; Acc a 15/16 (b, c no truth: NaN) -> MA 15/16;
//            IoU a 15/16, b NaN, c 0/(0+1+0) = 0 -> MIoU 15/32; WIoU 15/16.
//   image 2: GA 14/16 = 7/8; Acc a 6/8, b 1 -> MA 7/8; IoU a 6/8, b 8/10
//            -> MIoU 0.775 = 31/40; WIoU 0.5*0.75 + 0.5*0.8 = 31/40.
// Data set: GA 43/47; Acc a 28/32 = 7/8, b 15/15, c NaN -> MA 15/16;
//   IoU a 28/(28+0+4) = 7/8, b 15/(15+3+0) = 5/6, c 0/(0+1+0) = 0
//   -> MIoU (7/8 + 5/6 + 0)/3 = 41/72; WIoU 32/47*7/8 + 15/47*5/6 = 40.5/47.
//
// BF scores. Boundary = mask pixels with an 8-neighbour outside the mask or
// beyond the image edge; x is in neither mask. Default tolerance 0.0075 *
// sqrt(32) = 0.042 px: only coincident boundary pixels match.
//   image 0: a: true bd cols 0-1 (8), predicted cols 0-1 less (2,1) (7, all
//            true): P 1, R 7/8 -> 14/15. b: true bd cols 2-3 less x (7),
//            predicted those + (2,1) (8): P 7/8, R 1 -> 14/15. c NaN.
//            Image MeanBF 14/15.
//   image 1: a: true bd = ring of 12; predicted = ring less (0,0) + (1,1)
//            (sees (0,0) diagonally) = 12: P 11/12, R 11/12 -> 11/12.
//            b NaN; c predicted only -> 0. Image MeanBF (11/12 + 0)/2 = 11/24.
//   image 2: a: true bd rows 2-3 (8), predicted (2,2),(2,3), row 3 (6, all
//            true): P 1, R 6/8 -> 6/7. b: true bd rows 0-1 (8), predicted
//            rows 0-1 + (2,0),(2,1) (10): P 8/10, R 1 -> 8/9. c NaN.
//            Image MeanBF (6/7 + 8/9)/2 = 55/63.
//   Class MeanBF: a (14/15 + 11/12 + 6/7)/3 = 379/420; b (14/15 + 8/9)/2
//   = 41/45; c 0. Data set MeanBF = mean of image MeanBF
//   = (14/15 + 11/24 + 55/63)/3 = (2352 + 1155 + 2200)/2520/3 = 5707/7560.
// With tolerance 0.2 * sqrt(32) = 1.13 px, a pixel 1 px away matches
// (sqrt(2) does not): every mismatch above is 1 px from a boundary pixel of
// the other map, so a and b score 1 everywhere; image MeanBF 1, 1/2, 1;
// data set 5/6; class a 1, b 1, c 0.
//
// Loss: batch {0, 1} mean 0.5, batch {2} mean 2 -> (0.5*2 + 2*1)/3 = 1.
constexpr uint8_t kA = 0;
constexpr uint8_t kB = 1;
constexpr uint8_t kC = 2;
constexpr uint8_t kX = 255;  // no label
const std::vector<std::vector<uint8_t>> kTruth = {
    {kA, kA, kB, kB, kA, kA, kB, kB, kA, kA, kB, kB, kA, kA, kX, kB},
    {kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA},
    {kB, kB, kB, kB, kB, kB, kB, kB, kA, kA, kA, kA, kA, kA, kA, kA}};
const std::vector<std::vector<uint8_t>> kPredicted = {
    {kA, kA, kB, kB, kA, kA, kB, kB, kA, kB, kB, kB, kA, kA, kA, kB},
    {kC, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA, kA},
    {kB, kB, kB, kB, kB, kB, kB, kB, kB, kB, kA, kA, kA, kA, kA, kA}};

data::LabelSpec abc() {
  data::LabelSpec labels = data::LabelSpec::from_names({"a", "b", "c"});
  labels.ignore_value = 255;
  return labels;
}

at::Tensor maps(const std::vector<std::vector<uint8_t>>& images, int64_t first, int64_t count,
                int64_t h = 4, int64_t w = 4) {
  std::vector<at::Tensor> out;
  for (int64_t i = first; i < first + count; ++i) {
    out.push_back(torch::tensor(images[i], torch::kUInt8).view({h, w}));
  }
  return torch::stack(out);
}

// Logits whose argmax over classes is `predicted` [B, H, W].
at::Tensor logits_for(const at::Tensor& predicted, int64_t classes) {
  return torch::one_hot(predicted.to(torch::kInt64), classes)
      .permute({0, 3, 1, 2})
      .to(torch::kFloat32)
      .contiguous();
}

void feed(Metrics& m, int64_t first, int64_t count, float loss) {
  const at::Tensor target = maps(kTruth, first, count);
  const data::Batch batch{torch::zeros({count, 3, 4, 4}), target};
  m.update(logits_for(maps(kPredicted, first, count), 3), batch, {torch::tensor(loss), {}});
}

void feed_fixture(Metrics& m) {
  feed(m, 0, 2, 0.5f);
  feed(m, 2, 1, 2.0f);
}

double at_key(const nlohmann::json& j) {
  return j.is_null() ? NAN : j.get<double>();
}

void expect_values_equal(const MetricValues& x, const MetricValues& y) {
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].first, y[i].first);
    if (std::isnan(x[i].second)) {
      EXPECT_TRUE(std::isnan(y[i].second)) << x[i].first;
    } else {
      EXPECT_NEAR(x[i].second, y[i].second, 1e-12) << x[i].first;
    }
  }
}

}  // namespace

TEST(SegmentationMetricsTest, DatasetMetricsMatchTheHandComputedFixture) {
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU);
  feed_fixture(m);
  const MetricValues v = m.values();
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0].first, "loss");
  EXPECT_NEAR(v[0].second, 1.0, 1e-7);
  EXPECT_NEAR(*find_metric(v, "global_accuracy"), 43.0 / 47, 1e-12);
  EXPECT_NEAR(*find_metric(v, "mean_accuracy"), 15.0 / 16, 1e-12);
  EXPECT_NEAR(*find_metric(v, "mean_iou"), 41.0 / 72, 1e-12);
  EXPECT_NEAR(*find_metric(v, "weighted_iou"), 40.5 / 47, 1e-12);
  EXPECT_NEAR(*find_metric(v, "mean_bf_score"), 5707.0 / 7560, 1e-12);
  const nlohmann::json d = m.report()["dataset"];
  EXPECT_NEAR(d["GlobalAccuracy"].get<double>(), 43.0 / 47, 1e-12);
  EXPECT_NEAR(d["MeanAccuracy"].get<double>(), 15.0 / 16, 1e-12);
  EXPECT_NEAR(d["MeanIoU"].get<double>(), 41.0 / 72, 1e-12);
  EXPECT_NEAR(d["WeightedIoU"].get<double>(), 40.5 / 47, 1e-12);
  EXPECT_NEAR(d["MeanBFScore"].get<double>(), 5707.0 / 7560, 1e-12);
}

TEST(SegmentationMetricsTest, ClassMetricsMatchTheHandComputedFixture) {
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU);
  feed_fixture(m);
  const nlohmann::json classes = m.report()["classes"];
  ASSERT_EQ(classes.size(), 3u);
  EXPECT_EQ(classes[0]["name"], "a");
  EXPECT_NEAR(classes[0]["accuracy"].get<double>(), 7.0 / 8, 1e-12);
  EXPECT_NEAR(classes[0]["iou"].get<double>(), 7.0 / 8, 1e-12);
  EXPECT_NEAR(classes[0]["mean_bf_score"].get<double>(), 379.0 / 420, 1e-12);
  EXPECT_NEAR(classes[1]["accuracy"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(classes[1]["iou"].get<double>(), 5.0 / 6, 1e-12);
  EXPECT_NEAR(classes[1]["mean_bf_score"].get<double>(), 41.0 / 45, 1e-12);
  EXPECT_EQ(classes[2]["name"], "c");
  EXPECT_TRUE(classes[2]["accuracy"].is_null());    // no true pixel of c: NaN
  EXPECT_EQ(classes[2]["iou"].get<double>(), 0.0);  // predicted once, never true
  EXPECT_EQ(classes[2]["mean_bf_score"].get<double>(), 0.0);
}

TEST(SegmentationMetricsTest, ImageMetricsMatchTheHandComputedFixture) {
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU);
  feed_fixture(m);
  const nlohmann::json images = m.report()["images"];
  ASSERT_EQ(images.size(), 3u);
  const double expected[3][5] = {{14.0 / 15, 15.0 / 16, 7.0 / 8, 7.0 / 8, 14.0 / 15},
                                 {15.0 / 16, 15.0 / 16, 15.0 / 32, 15.0 / 16, 11.0 / 24},
                                 {7.0 / 8, 7.0 / 8, 31.0 / 40, 31.0 / 40, 55.0 / 63}};
  const char* keys[5] = {"global_accuracy", "mean_accuracy", "mean_iou", "weighted_iou",
                         "mean_bf_score"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(images[i]["index"], i);
    for (int k = 0; k < 5; ++k) {
      EXPECT_NEAR(at_key(images[i][keys[k]]), expected[i][k], 1e-12)
          << "image " << i << " " << keys[k];
    }
  }
}

TEST(SegmentationMetricsTest, ConfusionIsRowsTrueColumnsPredictedAndRowNormalised) {
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU);
  feed_fixture(m);
  const nlohmann::json r = m.report();
  EXPECT_EQ(r["confusion"], nlohmann::json::parse("[[28, 3, 1], [0, 15, 0], [0, 0, 0]]"));
  EXPECT_EQ(
      r["normalized_confusion"],
      nlohmann::json::parse("[[0.875, 0.09375, 0.03125], [0.0, 1.0, 0.0], [null, null, null]]"));
  EXPECT_EQ(r["confusion_axes"], "rows: true class, columns: predicted class");
}

TEST(SegmentationMetricsTest, ToleranceOfAPixelOrMoreMatchesNeighbouringBoundaries) {
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU,
                        SegmentationMetricsOptions().bf_tolerance(0.2));  // 1.13 px at 4x4
  feed_fixture(m);
  const nlohmann::json r = m.report();
  EXPECT_NEAR(r["dataset"]["MeanBFScore"].get<double>(), 5.0 / 6, 1e-12);
  EXPECT_NEAR(r["classes"][0]["mean_bf_score"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(r["classes"][1]["mean_bf_score"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(r["classes"][2]["mean_bf_score"].get<double>(), 0.0);
  EXPECT_NEAR(r["images"][1]["mean_bf_score"].get<double>(), 0.5, 1e-12);
}

TEST(SegmentationMetricsTest, ClassAbsentFromTheWholeSetIsNaNAndLeftOutOfMeans) {
  // 2x2, truth a b / a b, predicted a a / a b; c never appears.
  // Confusion a [2 0 0], b [1 1 0]. IoU a 2/3, b 1/2, c NaN -> MIoU 7/12.
  // Acc a 1, b 1/2, c NaN -> MA 3/4. GA 3/4. WIoU 2/4*2/3 + 2/4*1/2 = 7/12.
  // BF (0.021 px): a true bd 2, predicted 3 (all true): P 2/3, R 1 -> 0.8;
  // b true bd 2, predicted 1: P 1, R 1/2 -> 2/3; c NaN. MeanBF 11/15.
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU);
  const at::Tensor truth = torch::tensor({kA, kB, kA, kB}, torch::kUInt8).view({1, 2, 2});
  const at::Tensor predicted = torch::tensor({kA, kA, kA, kB}, torch::kUInt8).view({1, 2, 2});
  m.update(logits_for(predicted, 3), {torch::zeros({1, 3, 2, 2}), truth},
           {torch::tensor(0.0f), {}});
  const nlohmann::json r = m.report();
  EXPECT_NEAR(r["dataset"]["MeanIoU"].get<double>(), 7.0 / 12, 1e-12);
  EXPECT_NEAR(r["dataset"]["MeanAccuracy"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR(r["dataset"]["GlobalAccuracy"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR(r["dataset"]["WeightedIoU"].get<double>(), 7.0 / 12, 1e-12);
  EXPECT_NEAR(r["dataset"]["MeanBFScore"].get<double>(), 11.0 / 15, 1e-12);
  EXPECT_TRUE(r["classes"][2]["accuracy"].is_null());
  EXPECT_TRUE(r["classes"][2]["iou"].is_null());
  EXPECT_TRUE(r["classes"][2]["mean_bf_score"].is_null());
  EXPECT_NEAR(r["classes"][1]["mean_bf_score"].get<double>(), 2.0 / 3, 1e-12);
}

TEST(SegmentationMetricsTest, SumsOfTwoHalvesGiveTheValuesOfTheWhole) {
  for (Stage stage : {Stage::kTraining, Stage::kValidation, Stage::kEvaluation}) {
    SegmentationMetrics whole(abc(), stage, c10::kCPU);
    feed_fixture(whole);
    SegmentationMetrics first(abc(), stage, c10::kCPU);
    SegmentationMetrics second(abc(), stage, c10::kCPU);
    feed(first, 0, 2, 0.5f);
    feed(second, 2, 1, 2.0f);
    // What an all-reduce does to the sums of two ranks.
    SegmentationMetrics reduced(abc(), stage, c10::kCPU);
    ASSERT_EQ(first.sums().sizes(), whole.sums().sizes());
    reduced.sums().copy_(first.sums() + second.sums());
    expect_values_equal(reduced.values(), whole.values());
  }
}

TEST(SegmentationMetricsTest, ResetForgetsEverything) {
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU);
  feed_fixture(m);
  const MetricValues before = m.values();
  m.reset();
  for (const auto& [name, value] : m.values()) EXPECT_TRUE(std::isnan(value)) << name;
  EXPECT_TRUE(m.report()["images"].empty());
  feed_fixture(m);
  expect_values_equal(m.values(), before);
  EXPECT_EQ(m.report()["images"].size(), 3u);
}

TEST(SegmentationMetricsTest, StagesReportTheirValueSets) {
  auto names = [](const MetricValues& v) {
    std::vector<std::string> n;
    for (const auto& [name, value] : v) n.push_back(name);
    return n;
  };
  SegmentationMetrics training(abc(), Stage::kTraining, c10::kCPU);
  SegmentationMetrics validation(abc(), Stage::kValidation, c10::kCPU);
  SegmentationMetrics evaluation(abc(), Stage::kEvaluation, c10::kCPU,
                                 SegmentationMetricsOptions().per_image(false));
  feed_fixture(training);
  feed_fixture(validation);
  feed_fixture(evaluation);
  EXPECT_EQ(names(training.values()),
            (std::vector<std::string>{"loss", "global_accuracy", "mean_iou"}));
  const std::vector<std::string> five = {"loss", "global_accuracy", "mean_accuracy", "mean_iou",
                                         "weighted_iou"};
  EXPECT_EQ(names(validation.values()), five);
  EXPECT_EQ(names(evaluation.values()), five);  // no per-image pass, no BF
  EXPECT_TRUE(evaluation.report()["images"].empty());
  EXPECT_TRUE(evaluation.report()["dataset"]["MeanBFScore"].is_null());
  EXPECT_NEAR(*find_metric(training.values(), "mean_iou"), 41.0 / 72, 1e-12);
  EXPECT_EQ(training.sums().numel(), kLossSums + 9);
}

TEST(SegmentationMetricsTest, FormatReportPrintsTheDatasetAndClassTables) {
  SegmentationMetrics m(abc(), Stage::kEvaluation, c10::kCPU);
  feed_fixture(m);
  const std::string text = m.format_report();
  for (const char* s : {"GlobalAccuracy", "MeanAccuracy", "MeanIoU", "WeightedIoU", "MeanBFScore",
                        "0.91489", "0.93750", "0.56944", "0.86170", "0.75489", "Class", "Accuracy",
                        "IoU", "0.90238", "0.91111", "NaN"}) {
    EXPECT_NE(text.find(s), std::string::npos) << s << " in\n" << text;
  }
}

TEST(SegmentationMetricsTest, StrayLabelIdIsCorruptDataAtEvaluationAndDroppedBefore) {
  // 1x2: truth a and 7 (neither a class id nor 255), both predicted a.
  const at::Tensor truth = torch::tensor({kA, uint8_t{7}}, torch::kUInt8).view({1, 1, 2});
  const at::Tensor logits = logits_for(torch::zeros({1, 1, 2}, torch::kInt64), 3);
  const data::Batch batch{torch::zeros({1, 3, 1, 2}), truth};
  SegmentationMetrics evaluation(abc(), Stage::kEvaluation, c10::kCPU);
  try {
    evaluation.update(logits, batch, {torch::tensor(0.0f), {}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("label id 7"), std::string::npos) << e.what();
  }
  SegmentationMetrics validation(abc(), Stage::kValidation, c10::kCPU);
  validation.update(logits, batch, {torch::tensor(0.0f), {}});
  EXPECT_EQ(validation.report()["confusion"][0][0], 1);  // only the labelled pixel
  EXPECT_EQ(*find_metric(validation.values(), "global_accuracy"), 1.0);
}

TEST(SegmentationMetricsTest, WrongShapesAreInvalidArguments) {
  SegmentationMetrics m(abc(), Stage::kValidation, c10::kCPU);
  const data::Batch batch{torch::zeros({1, 3, 4, 4}), torch::zeros({1, 4, 4}, torch::kUInt8)};
  EXPECT_THROW(m.update(torch::zeros({1, 2, 4, 4}), batch, {torch::tensor(0.0f), {}}), Error);
  EXPECT_THROW(m.update(torch::zeros({1, 3, 4, 5}), batch, {torch::tensor(0.0f), {}}), Error);
}

}  // namespace gpulab::tasks::segmentation_metrics_test

namespace gpulab::tasks::segmentation_metrics_test {

// ERFNet's first stage: 1/8 logits train on the label at each output pixel's
// centre (row 8i + 4, column 8j + 4), as the reference's NEAREST resize.
TEST(SegmentationLabelsAtOutputSizeTest, SmallerOutputTakesTheLabelAtEachPixelsCentre) {
  const at::Tensor labels = torch::arange(2 * 16 * 24, torch::kInt64).view({2, 16, 24}).to(torch::kUInt8);
  const at::Tensor logits = torch::zeros({2, 3, 2, 3});
  const at::Tensor at_output = labels_at_output_size(labels, logits);
  ASSERT_EQ(at_output.sizes(), (std::vector<int64_t>{2, 2, 3}));
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < 2; ++i) {
      for (int64_t j = 0; j < 3; ++j) {
        EXPECT_EQ(at_output[b][i][j].item<int>(), labels[b][8 * i + 4][8 * j + 4].item<int>());
      }
    }
  }
  EXPECT_TRUE(labels_at_output_size(labels, torch::zeros({2, 3, 16, 24})).equal(labels));
}

TEST(SegmentationLabelsAtOutputSizeTest, OutputsNotAWholeFactorSmallerAreRefusedWithBothSizes) {
  const at::Tensor labels = torch::zeros({1, 16, 24}, torch::kUInt8);
  try {
    labels_at_output_size(labels, torch::zeros({1, 3, 5, 7}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("7x5 (WxH) for 24x16 label maps"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(labels_at_output_size(labels, torch::zeros({1, 3, 2, 4})), Error);  // 8 != 6
}

}  // namespace gpulab::tasks::segmentation_metrics_test
