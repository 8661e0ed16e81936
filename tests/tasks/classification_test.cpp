// Classification task: model config from data, loss, and its metrics against
// hand-computed values.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/tasks/task_registry.h"

namespace gpulab::tasks {
namespace {

data::Batch batch_of(const at::Tensor& target) {
  return {torch::zeros({target.size(0), 1, 2, 2}), target};
}

}  // namespace

TEST(ClassificationTaskTest, ModelConfigFollowsTheData) {
  DataShape shape{3, 32, 16, data::LabelSpec::from_names({"a", "b", "c", "d"})};
  auto c = ClassificationTask("lenet5").model_config(shape);
  EXPECT_EQ(c.num_classes, 4);
  EXPECT_EQ(c.in_channels, 3);
  EXPECT_EQ(c.height, 32);
  EXPECT_EQ(c.width, 16);
}

TEST(ClassificationTaskTest, LossIsCrossEntropyAndAccuracyCountsTopOne) {
  ClassificationTask task("basic_cnn");
  auto logits = torch::tensor({{2.0f, 0.0f}, {0.0f, 0.0f}, {0.0f, 5.0f}});
  auto target = torch::tensor({0, 1, 0}, torch::kInt64);
  // -log softmax: row0 log(1+e^-2), row1 log 2, row2 5 + log(1+e^-5).
  const double expected =
      (std::log1p(std::exp(-2.0)) + std::log(2.0) + 5 + std::log1p(std::exp(-5.0))) / 3;
  const LossTerms loss = task.loss(logits, batch_of(target));
  EXPECT_NEAR(loss.total.item<double>(), expected, 1e-5);
  auto metrics = task.metrics(Stage::kTraining, c10::kCPU);
  metrics->update(logits, batch_of(target), loss);
  const MetricValues values = metrics->values();
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(values[0].first, "loss");
  EXPECT_NEAR(values[0].second, expected, 1e-5);
  EXPECT_NEAR(*find_metric(values, "accuracy"), 1.0 / 3, 1e-12);  // row1 ties -> index 0
}

TEST(ClassificationTaskTest, MetricsSumOverBatchesAsOneSet) {
  ClassificationTask task("basic_cnn");
  task.setup({c10::kCPU, {1, 2, 2, data::LabelSpec::from_names({"a", "b", "c"})}, {}});
  auto metrics = task.metrics(Stage::kEvaluation, c10::kCPU);
  // Two batches: 2 of 3 right, then 1 of 1 wrong; losses 0.5 and 2.
  metrics->update(torch::tensor({{1.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 0.0f}, {0.0f, 1.0f, 0.0f}}),
                  batch_of(torch::tensor({0, 1, 2}, torch::kInt64)), {torch::tensor(0.5f), {}});
  metrics->update(torch::tensor({{0.0f, 0.0f, 1.0f}}), batch_of(torch::tensor({0}, torch::kInt64)),
                  {torch::tensor(2.0f), {}});
  const MetricValues values = metrics->values();
  EXPECT_NEAR(*find_metric(values, "loss"), (0.5 * 3 + 2.0) / 4, 1e-12);
  EXPECT_NEAR(*find_metric(values, "accuracy"), 0.5, 1e-12);
  const nlohmann::json report = metrics->report();
  EXPECT_EQ(report["confusion"][0][0], 1);  // true a, predicted a
  EXPECT_EQ(report["confusion"][0][2], 1);  // true a, predicted c
  EXPECT_EQ(report["confusion"][2][1], 1);  // true c, predicted b
  EXPECT_EQ(report["per_class"][2]["label"], "c");
  EXPECT_NEAR(report["metrics"]["accuracy"].get<double>(), 0.5, 1e-12);
}

TEST(TaskRegistryTest, NamesAreCaseInsensitiveAndUnknownOnesListTheValid) {
  EXPECT_EQ(resolve_task_name("CLASSIFY"), "classify");
  try {
    resolve_task_name("detect");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("valid: classify"), std::string::npos) << e.what();
  }
  EXPECT_THROW(register_task("Classify", {"again", "basic_cnn", nullptr}), Error);
}

}  // namespace gpulab::tasks
