// Per-label splitting.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/split.h"

namespace gpulab::data {
namespace {

Dataset labelled(const std::vector<int64_t>& labels, int classes) {
  Dataset ds;
  const auto n = static_cast<int64_t>(labels.size());
  ds.images = torch::arange(n, torch::kUInt8).view({n, 1, 1, 1});
  ds.targets = torch::tensor(labels, torch::kInt64);
  for (int c = 0; c < classes; ++c) ds.label_spec.names.push_back(std::to_string(c));
  return ds;
}

}  // namespace

TEST(SplitTest, FractionIsTakenFromEveryLabel) {
  std::vector<int64_t> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i < 40 ? 0 : 1);  // 40 / 60
  auto [first, rest] = split_each_label(labelled(labels, 2), 0.25, 7);
  EXPECT_EQ(count_each_label(first), (std::vector<int64_t>{10, 15}));
  EXPECT_EQ(count_each_label(rest), (std::vector<int64_t>{30, 45}));
  // Disjoint and complete.
  auto all = torch::cat({first.images.flatten(), rest.images.flatten()}).sort();
  EXPECT_TRUE(torch::equal(std::get<0>(all), torch::arange(100, torch::kUInt8)));
}

// Regression: --val-split 0.5 moved a label's only image to validation,
// leaving the class with no training images.
TEST(SplitTest, AFractionLeavesEveryLabelAnImageInTheSecondPart) {
  auto [first, rest] = split_each_label(labelled({0, 1, 1, 1, 1, 1, 1, 0}, 2), 0.5, 3);
  EXPECT_EQ(count_each_label(first), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(count_each_label(rest), (std::vector<int64_t>{1, 3}));
  auto [none, whole] = split_each_label(labelled({0, 1, 1}, 2), 0.9, 3);
  EXPECT_EQ(count_each_label(none), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(count_each_label(whole), (std::vector<int64_t>{1, 1}));
}

TEST(SplitTest, CountIsCappedByTheLabelSize) {
  auto [first, rest] = split_each_label(labelled({0, 0, 0, 1}, 2), 2, 1);
  EXPECT_EQ(count_each_label(first), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(rest.size(), 1);
}

TEST(SplitTest, SameSeedSameSplitOtherSeedOtherSplit) {
  std::vector<int64_t> labels(200, 0);
  auto a = split_each_label(labelled(labels, 1), 0.5, 3).first;
  auto b = split_each_label(labelled(labels, 1), 0.5, 3).first;
  auto c = split_each_label(labelled(labels, 1), 0.5, 4).first;
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_FALSE(torch::equal(a.images, c.images));
}

TEST(SplitTest, RejectsANonPositiveAmount) {
  EXPECT_THROW(split_each_label(labelled({0, 1}, 2), 0, 1), Error);
}

TEST(SplitTest, TakeEachLabelKeepsTheFirstImages) {
  Dataset ds = take_each_label(labelled({0, 1, 0, 1, 0}, 2), 1);
  EXPECT_TRUE(torch::equal(ds.images.flatten(), torch::tensor({0, 1}, torch::kUInt8)));
}

}  // namespace gpulab::data
