// Learn-rate schedules.
#include <gtest/gtest.h>

#include <cmath>

#include "gpulab/train/lr_schedule.h"

namespace gpulab::train {

TEST(LrScheduleTest, NoneKeepsTheBaseRate) {
  EXPECT_DOUBLE_EQ(learn_rate_at(TrainOptions().learn_rate(0.1), 7.5), 0.1);
}

TEST(LrScheduleTest, PiecewiseDropsEveryPeriod) {
  auto o =
      TrainOptions().learn_rate(0.1).lr_schedule("piecewise").lr_drop_factor(0.5).lr_drop_period(2);
  EXPECT_DOUBLE_EQ(learn_rate_at(o, 0.0), 0.1);
  EXPECT_DOUBLE_EQ(learn_rate_at(o, 1.99), 0.1);
  EXPECT_DOUBLE_EQ(learn_rate_at(o, 2.0), 0.05);
  EXPECT_DOUBLE_EQ(learn_rate_at(o, 4.5), 0.025);
}

TEST(LrScheduleTest, CosineGoesFromBaseToZero) {
  auto o = TrainOptions().learn_rate(0.2).lr_schedule("cosine").max_epochs(10);
  EXPECT_DOUBLE_EQ(learn_rate_at(o, 0), 0.2);
  EXPECT_NEAR(learn_rate_at(o, 5), 0.1, 1e-12);
  EXPECT_NEAR(learn_rate_at(o, 10), 0.0, 1e-12);
}

TEST(LrScheduleTest, PolyIsErfnetsPerEpochDecay) {
  // ERFNet (train/main.py): 5e-4 * (1 - (epoch - 1) / 150)^0.9 for epochs 1..150.
  auto o = TrainOptions().learn_rate(5e-4).lr_schedule("poly").max_epochs(150);
  EXPECT_DOUBLE_EQ(learn_rate_at(o, 0.0), 5e-4);
  EXPECT_DOUBLE_EQ(learn_rate_at(o, 0.9), 5e-4);  // constant within an epoch
  EXPECT_NEAR(learn_rate_at(o, 1.0), 5e-4 * std::pow(149.0 / 150.0, 0.9), 1e-15);
  EXPECT_NEAR(learn_rate_at(o, 149.5), 5.5e-6, 1e-7);  // the last epoch
}

TEST(LrScheduleTest, WarmupRampsLinearly) {
  auto o = TrainOptions().learn_rate(1.0).warmup_epochs(2);
  EXPECT_NEAR(learn_rate_at(o, 1.0), 0.5, 1e-12);
  EXPECT_NEAR(learn_rate_at(o, 2.0), 1.0, 1e-12);
  EXPECT_GT(learn_rate_at(o, 0.0), 0.0);
}

}  // namespace gpulab::train
