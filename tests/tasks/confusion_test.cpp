// Confusion matrix metrics against hand-computed values.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gpulab/tasks/confusion.h"

namespace gpulab::tasks {

TEST(ConfusionTest, MetricsMatchHandComputedValues) {
  ConfusionMatrix m(3);
  // actual:    0 0 0 1 1 2
  // predicted: 0 0 1 1 2 2
  m.add(torch::tensor({0, 0, 1, 1, 2, 2}), torch::tensor({0, 0, 0, 1, 1, 2}));
  EXPECT_EQ(m.count(0, 1), 1);
  EXPECT_DOUBLE_EQ(m.accuracy(), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.precision(1), 0.5);     // predicted 1: {actual 0, actual 1}
  EXPECT_DOUBLE_EQ(m.recall(0), 2.0 / 3.0);  // actual 0: predicted 0, 0, 1
  EXPECT_DOUBLE_EQ(m.precision(2), 0.5);
  EXPECT_DOUBLE_EQ(m.recall(2), 1.0);

  auto j = m.to_json({"a", "b", "c"});
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 4.0 / 6.0);
  EXPECT_EQ(j["per_class"][1]["label"], "b");
  EXPECT_EQ(j["per_class"][0]["support"], 3);
  EXPECT_EQ(j["confusion"][1], nlohmann::json({0, 1, 1}));
}

TEST(ConfusionTest, AccumulatesOverBatchesAndHandlesAbsentClasses) {
  ConfusionMatrix m(4);
  m.add(torch::tensor({1}), torch::tensor({1}));
  m.add(torch::tensor({1}), torch::tensor({0}));
  EXPECT_EQ(m.total(), 2);
  EXPECT_DOUBLE_EQ(m.precision(3), 0.0);
  EXPECT_DOUBLE_EQ(m.recall(3), 0.0);
  EXPECT_NE(m.format({"w", "x", "y", "z"}).find("Precision"), std::string::npos);
}

}  // namespace gpulab::tasks
