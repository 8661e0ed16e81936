// Shuffle modes and their determinism.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/epoch_sampler.h"

namespace gpulab::data {

TEST(EpochSamplerTest, NeverKeepsTheStoredOrder) {
  EpochSampler s(5, ShuffleMode::kNever, 1);
  EXPECT_TRUE(torch::equal(s.order(3), torch::arange(5, torch::kInt64)));
}

TEST(EpochSamplerTest, OnceUsesOnePermutationForEveryEpoch) {
  EpochSampler s(50, ShuffleMode::kOnce, 1);
  EXPECT_TRUE(torch::equal(s.order(1), s.order(7)));
  EXPECT_FALSE(torch::equal(s.order(1), torch::arange(50, torch::kInt64)));
}

TEST(EpochSamplerTest, EveryEpochChangesTheOrderButIsReproducible) {
  EpochSampler a(50, ShuffleMode::kEveryEpoch, 9), b(50, ShuffleMode::kEveryEpoch, 9);
  EXPECT_FALSE(torch::equal(a.order(1), a.order(2)));
  EXPECT_TRUE(torch::equal(a.order(2), b.order(2)));
  EXPECT_TRUE(torch::equal(std::get<0>(a.order(2).sort()), torch::arange(50, torch::kInt64)));
}

TEST(EpochSamplerTest, CountsThePartialLastBatch) {
  EXPECT_EQ(EpochSampler(10, ShuffleMode::kNever, 0).batches_per_epoch(4), 3);
  EXPECT_EQ(EpochSampler(8, ShuffleMode::kNever, 0).batches_per_epoch(4), 2);
}

TEST(EpochSamplerTest, ParsesModeNamesAndRejectsOthers) {
  EXPECT_EQ(parse_shuffle_mode("Every-Epoch"), ShuffleMode::kEveryEpoch);
  EXPECT_THROW(parse_shuffle_mode("sometimes"), Error);
}

}  // namespace gpulab::data
