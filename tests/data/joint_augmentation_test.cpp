// Joint augmentation keeps images and label maps aligned.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/joint_augmentation.h"
#include "gpulab/data/resident_batch_source.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {

// A batch whose label map is drawn from the image itself: channel 0 holds
// 10 * label at every pixel, so alignment can be checked after any warp.
Batch self_labelled_batch(int64_t n, int64_t h, int64_t w) {
  torch::manual_seed(3);
  const at::Tensor target = torch::randint(0, 5, {n, h, w}, torch::kInt64).to(torch::kUInt8);
  at::Tensor input = torch::rand({n, 3, h, w});
  input.select(1, 0).copy_(target.to(torch::kFloat32) * 10);
  return {input, target};
}

// Labelled pixels whose image value (channel 0 = `scale` * label) disagrees
// with their label, as a mask.
at::Tensor misaligned_mask(const Batch& b, double scale = 10) {
  const at::Tensor labelled = b.target.ne(255);
  const at::Tensor expected = b.target.to(torch::kFloat32) * scale;
  return (b.input.select(1, 0) - expected).abs().gt(1e-3 * scale) & labelled;
}

int64_t misaligned(const Batch& b, double scale = 10) {
  return misaligned_mask(b, scale).sum().item<int64_t>();
}

// Pixels within 2 of a change of label (where bilinear image sampling may
// blend two labels' values).
at::Tensor near_label_edges(const at::Tensor& target) {
  const at::Tensor t = target.to(torch::kFloat32).unsqueeze(1);
  const at::Tensor hi = torch::max_pool2d(t, 5, 1, 2);
  const at::Tensor lo = -torch::max_pool2d(-t, 5, 1, 2);
  return hi.ne(lo).squeeze(1);
}

}  // namespace

TEST(JointAugmentationTest, FlipsAndIntegerShiftsMoveImageAndLabelsTogether) {
  const Batch batch = self_labelled_batch(4, 12, 16);
  std::vector<SamplePlan> plans(4);
  plans[0].flip_x = true;
  plans[1].translate_x = 3;
  plans[1].translate_y = -2;
  plans[2].flip_y = true;
  plans[2].translate_x = -5;
  // plans[3]: identity.
  const Batch out = apply_joint_plans(batch, plans);
  EXPECT_EQ(misaligned(out), 0);
  // The flip really mirrored: the left column is the old right column.
  EXPECT_TRUE(out.target[0].select(1, 0).equal(batch.target[0].select(1, 15)));
  // The shift moved pixels right by 3 and up by 2, and filled the gap with
  // the ignore label.
  EXPECT_EQ(out.target[1][0][3].item<int>(), batch.target[1][2][0].item<int>());
  EXPECT_TRUE(out.target[1].narrow(1, 0, 3).eq(255).all().item<bool>());
  EXPECT_TRUE(out.target[1].narrow(0, 10, 2).eq(255).all().item<bool>());
  EXPECT_NEAR(out.input[1][0].narrow(1, 0, 3).abs().max().item<float>(), 0.0, 1e-6);
  EXPECT_TRUE(out.target[3].equal(batch.target[3]));
}

TEST(JointAugmentationTest, ScalingKeepsLabelsOnTheirPixels) {
  // Smooth labels (blocks of 4x4) so bilinear image sampling and nearest
  // label sampling agree away from block edges.
  const at::Tensor blocks = torch::randint(0, 5, {2, 4, 4}, torch::kInt64).to(torch::kUInt8);
  const at::Tensor target =
      blocks.repeat_interleave(8, 1).repeat_interleave(8, 2).contiguous();  // [2, 32, 32]
  at::Tensor input = torch::zeros({2, 3, 32, 32});
  input.select(1, 0).copy_(target.to(torch::kFloat32) * 10);
  std::vector<SamplePlan> plans(2);
  plans[0].scale_x = plans[0].scale_y = 1.5;
  plans[1].scale_x = 0.75;
  plans[1].flip_x = true;
  const Batch out = apply_joint_plans({input, target}, plans);
  const int64_t labelled = out.target.ne(255).sum().item<int64_t>();
  EXPECT_GT(labelled, 1500);
  // Only pixels next to a label edge may blend.
  EXPECT_EQ(
      (misaligned_mask(out) & near_label_edges(out.target).logical_not()).sum().item<int64_t>(), 0);
  EXPECT_LT(misaligned(out), labelled / 4);
}

TEST(JointAugmentationTest, TheSourceDrawsTheSamePlansForTheSameSamples) {
  // A resumed run gives the same augmentation: the plan depends on (seed,
  // epoch, sample), not on the step's position in the epoch.
  Dataset ds;
  const Batch b = self_labelled_batch(6, 8, 8);
  ds.images = (b.input * 0).to(torch::kUInt8);
  ds.images.select(1, 0).copy_(b.target * 10);
  ds.targets = b.target;
  ds.label_spec = LabelSpec::from_names({"a", "b", "c", "d", "e"});
  ds.label_spec.ignore_value = 255;
  const Normalization identity{{0, 0, 0}, {1, 1, 1}};
  auto batcher = std::make_shared<const ResidentBatcher>(ds, identity, c10::Device(c10::kCPU));
  const TransformOptions t =
      TransformOptions().x_reflection(true).x_translation({-3, 3}).y_translation({-2, 2});
  JointAugmentingSource whole(std::make_unique<ResidentBatchSource>(batcher), t, 7);
  JointAugmentingSource resumed(std::make_unique<ResidentBatchSource>(batcher), t, 7);
  whole.start_epoch(2, {torch::tensor({0, 1, 2}), torch::tensor({3, 4, 5})});
  resumed.start_epoch(2, {torch::tensor({3, 4, 5})});
  whole.next();
  const Batch a = whole.next(), c = resumed.next();
  EXPECT_TRUE(a.target.equal(c.target));
  EXPECT_TRUE(a.input.equal(c.input));
  EXPECT_EQ(misaligned(a, 10.0 / 255), 0);  // pixels are normalised to [0, 1]
  // And it augmented: the plain batch differs.
  EXPECT_FALSE(a.target.equal(batcher->batch(torch::tensor({3, 4, 5})).target));
}

TEST(JointAugmentationTest, ColourJitterIsRefusedForLabelMaps) {
  auto batcher = std::make_shared<const ResidentBatcher>(
      Dataset{torch::zeros({1, 3, 8, 8}, torch::kUInt8), torch::zeros({1, 8, 8}, torch::kUInt8)},
      Normalization{{0, 0, 0}, {1, 1, 1}}, c10::Device(c10::kCPU));
  const std::string message = testing::error_of([&] {
    JointAugmentingSource(std::make_unique<ResidentBatchSource>(batcher),
                          TransformOptions().brightness(0.2), 1);
  });
  EXPECT_NE(message.find("`brightness`"), std::string::npos) << message;
}

}  // namespace gpulab::data
