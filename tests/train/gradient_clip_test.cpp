// Gradient clipping methods.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/train/gradient_clip.h"

namespace gpulab::train {
namespace {

torch::Tensor with_grad(std::vector<float> g) {
  auto p = torch::zeros({static_cast<int64_t>(g.size())}, torch::requires_grad());
  p.mutable_grad() = torch::tensor(g);
  return p;
}

}  // namespace

TEST(GradientClipTest, L2NormClipsEachParameterSeparately) {
  auto a = with_grad({3, 4});        // norm 5
  auto b = with_grad({0.3f, 0.4f});  // norm 0.5
  clip_gradients({a, b}, "l2norm", 1.0);
  EXPECT_NEAR(a.grad().norm().item<double>(), 1.0, 1e-5);
  EXPECT_NEAR(b.grad().norm().item<double>(), 0.5, 1e-6);
}

TEST(GradientClipTest, GlobalL2NormScalesAllTogether) {
  auto a = with_grad({3, 0});
  auto b = with_grad({0, 4});
  clip_gradients({a, b}, "global-l2norm", 1.0);
  EXPECT_NEAR(a.grad()[0].item<double>(), 0.6, 1e-5);
  EXPECT_NEAR(b.grad()[1].item<double>(), 0.8, 1e-5);
}

TEST(GradientClipTest, AbsoluteValueClampsElements) {
  auto a = with_grad({-5, 0.5f, 2});
  clip_gradients({a}, "absolute-value", 1.0);
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({-1.0f, 0.5f, 1.0f})));
}

TEST(GradientClipTest, InfiniteThresholdLeavesGradientsAlone) {
  auto a = with_grad({30, 40});
  clip_gradients({a}, "l2norm", std::numeric_limits<double>::infinity());
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({30.0f, 40.0f})));
}

}  // namespace gpulab::train
