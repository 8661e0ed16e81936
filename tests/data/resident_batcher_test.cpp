// Normalisation statistics and device-resident batches.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/data/resident_batcher.h"

namespace gpulab::data {

TEST(ResidentBatcherTest, NormalisationMatchesHandComputedValues) {
  Dataset ds;
  // Pixels 0 and 255 in equal numbers: mean 0.5, std 0.5 in [0, 1] units.
  ds.images = torch::tensor({0, 255, 0, 255}, torch::kUInt8).view({2, 1, 1, 2});
  ds.targets = torch::tensor({0, 1}, torch::kInt64);
  ds.label_spec.names = {"a", "b"};
  Normalization norm = compute_normalization(ds);
  EXPECT_NEAR(norm.mean[0], 0.5, 1e-9);
  EXPECT_NEAR(norm.std[0], 0.5, 1e-9);

  ResidentBatcher batcher(ds, norm, torch::kCPU);
  Batch b = batcher.batch(torch::tensor({1}, torch::kInt64));
  // (0/255 - 0.5) / 0.5 = -1, (255/255 - 0.5) / 0.5 = 1.
  EXPECT_TRUE(torch::allclose(b.input.flatten(), torch::tensor({-1.0f, 1.0f})));
  EXPECT_EQ(b.target.item<int64_t>(), 1);
  EXPECT_EQ(b.input.scalar_type(), torch::kFloat32);
}

TEST(ResidentBatcherTest, RangeReturnsRowsInStoredOrder) {
  Dataset ds;
  ds.images = torch::arange(6, torch::kUInt8).view({3, 1, 1, 2});
  ds.targets = torch::tensor({2, 0, 1}, torch::kInt64);
  ds.label_spec.names = {"a", "b", "c"};
  ResidentBatcher batcher(ds, Normalization{{0.0}, {1.0}}, torch::kCPU);
  Batch b = batcher.range(1, 3);
  EXPECT_TRUE(torch::equal(b.target, torch::tensor({0, 1}, torch::kInt64)));
  EXPECT_NEAR(b.input[1][0][0][1].item<float>(), 5.0 / 255.0, 1e-6);
}

}  // namespace gpulab::data
