// TrainOptions validation and JSON round trip.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/train/train_options.h"

namespace gpulab::train {
namespace {

std::string validation_error(const TrainOptions& o) {
  try {
    o.validate();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TrainOptionsTest, DefaultsAreValidAndFollowMatlab) {
  TrainOptions o;
  EXPECT_EQ(validation_error(o), "");
  EXPECT_EQ(o.solver(), "sgdm");
  EXPECT_EQ(o.batch_size(), 128);
  EXPECT_EQ(o.max_epochs(), 30);
  EXPECT_DOUBLE_EQ(o.l2_regularization(), 1e-4);
}

TEST(TrainOptionsTest, RejectsUnknownSolverListingTheValidOnes) {
  EXPECT_NE(validation_error(TrainOptions().solver("lbfgs")).find("sgdm, adam, rmsprop"),
            std::string::npos);
}

TEST(TrainOptionsTest, RejectsNonPositiveBatchSizeAndEpochs) {
  EXPECT_NE(validation_error(TrainOptions().batch_size(0)).find("batch size"), std::string::npos);
  EXPECT_NE(validation_error(TrainOptions().max_epochs(-1)).find("epochs"), std::string::npos);
}

TEST(TrainOptionsTest, JsonRoundTripKeepsEveryValue) {
  TrainOptions a =
      TrainOptions().solver("adam").learn_rate(0.003).batch_size(64).shuffle("never").seed(5);
  TrainOptions b;
  b.apply_json(a.to_json(), "test");
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.to_json()["gradient_threshold"], "inf");
}

TEST(TrainOptionsTest, ApplyJsonAcceptsDashesAndRejectsUnknownKeys) {
  TrainOptions o;
  o.apply_json({{"batch-size", 16}}, "cfg.yaml");
  EXPECT_EQ(o.batch_size(), 16);
  try {
    o.apply_json({{"batchsize", 16}}, "cfg.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.yaml"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos);
  }
  EXPECT_THROW(o.apply_json({{"batch_size", "many"}}, "cfg.yaml"), Error);
}

}  // namespace gpulab::train
