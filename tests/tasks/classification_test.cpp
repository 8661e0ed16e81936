// Classification task: model config from data, loss and accuracy.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/tasks/classification.h"

namespace gpulab::tasks {

TEST(ClassificationTaskTest, ModelConfigFollowsTheData) {
  data::Dataset ds;
  ds.images = torch::zeros({2, 3, 32, 16}, torch::kUInt8);
  ds.labels = torch::zeros({2}, torch::kInt64);
  ds.class_names = {"a", "b", "c", "d"};
  auto c = ClassificationTask("lenet5").model_config(ds);
  EXPECT_EQ(c.num_classes, 4);
  EXPECT_EQ(c.in_channels, 3);
  EXPECT_EQ(c.height, 32);
  EXPECT_EQ(c.width, 16);
}

TEST(ClassificationTaskTest, LossIsCrossEntropyAndCorrectCountsTopOne) {
  ClassificationTask task("basic_cnn");
  auto logits = torch::tensor({{2.0f, 0.0f}, {0.0f, 0.0f}, {0.0f, 5.0f}});
  auto target = torch::tensor({0, 1, 0}, torch::kInt64);
  // -log softmax: row0 log(1+e^-2), row1 log 2, row2 5 + log(1+e^-5).
  const double expected =
      (std::log1p(std::exp(-2.0)) + std::log(2.0) + 5 + std::log1p(std::exp(-5.0))) / 3;
  EXPECT_NEAR(task.loss(logits, target).item<double>(), expected, 1e-5);
  EXPECT_EQ(task.correct(logits, target).item<int64_t>(), 1);  // row1 ties -> index 0
  EXPECT_EQ(task.predictions(target), 3);
}

}  // namespace gpulab::tasks
