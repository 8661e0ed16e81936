// Selecting classes by name or index, relabelled in the order given.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/split.h"

namespace gpulab::data {

TEST(SelectClassesTest, KeepsTheChosenClassesRelabelledInTheGivenOrder) {
  Dataset ds;
  ds.images = torch::arange(6, torch::kUInt8).reshape({6, 1, 1, 1});
  ds.targets = torch::tensor({0, 1, 2, 0, 2, 1}, torch::kInt64);
  ds.label_spec.names = {"cat", "dog", "owl"};
  ds.source = "pets";
  Dataset out = select_classes(ds, {"owl", "0"});
  EXPECT_EQ(out.label_spec.names, (std::vector<std::string>{"owl", "cat"}));
  EXPECT_TRUE(torch::equal(out.targets, torch::tensor({1, 0, 1, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(out.images.flatten(), torch::tensor({0, 2, 3, 4}, torch::kUInt8)));
}

TEST(SelectClassesTest, UnknownOrRepeatedClassesAreRejected) {
  Dataset ds;
  ds.images = torch::zeros({2, 1, 1, 1}, torch::kUInt8);
  ds.targets = torch::tensor({0, 1}, torch::kInt64);
  ds.label_spec.names = {"cat", "dog"};
  ds.source = "pets";
  EXPECT_THROW(select_classes(ds, {"emu"}), Error);
  EXPECT_THROW(select_classes(ds, {"2"}), Error);
  EXPECT_THROW(select_classes(ds, {"cat", "0"}), Error);
}

}  // namespace gpulab::data
