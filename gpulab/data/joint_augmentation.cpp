// Joint augmentation as one affine_grid + two grid_sample calls per batch.
#include "gpulab/data/joint_augmentation.h"

#include <torch/torch.h>

#include <cmath>

#include "gpulab/core/error.h"

namespace gpulab::data {
namespace F = torch::nn::functional;

std::string unsupported_joint_transform(const TransformOptions& t) {
  if (t.resize_height() > 0 || t.resize_width() > 0) return "resize";
  if (t.resize_shorter() > 0) return "resize_shorter";
  if (t.center_crop_height() > 0 || t.center_crop_width() > 0) return "center_crop";
  if (t.random_resized_crop() > 0) return "random_resized_crop";
  if (t.brightness() > 0) return "brightness";
  if (t.contrast() > 0) return "contrast";
  if (t.saturation() > 0) return "saturation";
  return "";
}

Batch apply_joint_plans(const Batch& batch, const std::vector<SamplePlan>& plans) {
  const int64_t n = batch.size();
  GPULAB_CHECK(static_cast<int64_t>(plans.size()) == n, ErrorKind::kInternal,
               "{} augmentation plans for a batch of {}", plans.size(), n);
  if (n == 0) return batch;
  const int64_t h = batch.input.size(2), w = batch.input.size(3);
  // theta maps output to input coordinates, normalised to [-1, 1] (centre 0):
  // the inverse of "flip, scale about the centre, then shift".
  at::Tensor theta = torch::zeros({n, 2, 3}, torch::kFloat32);
  float* t = theta.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const SamplePlan& p = plans[static_cast<size_t>(i)];
    const double fx = p.flip_x ? -1.0 : 1.0, fy = p.flip_y ? -1.0 : 1.0;
    const double tx = 2.0 * p.translate_x / static_cast<double>(w);
    const double ty = 2.0 * p.translate_y / static_cast<double>(h);
    float* row = t + i * 6;
    row[0] = static_cast<float>(fx / p.scale_x);
    row[2] = static_cast<float>(-fx * tx / p.scale_x);
    row[4] = static_cast<float>(fy / p.scale_y);
    row[5] = static_cast<float>(-fy * ty / p.scale_y);
  }
  theta = theta.to(batch.input.device());
  const at::Tensor grid = F::affine_grid(theta, {n, 1, h, w}, /*align_corners=*/false);
  Batch out;
  out.input = F::grid_sample(batch.input, grid.to(batch.input.scalar_type()),
                             F::GridSampleFuncOptions()
                                 .mode(torch::kBilinear)
                                 .padding_mode(torch::kZeros)
                                 .align_corners(false));
  // Labels + 1 sampled nearest with zero fill: 0 = outside the image.
  const at::Tensor shifted = (batch.target.to(torch::kFloat32) + 1).unsqueeze(1);
  const at::Tensor sampled = F::grid_sample(shifted, grid,
                                            F::GridSampleFuncOptions()
                                                .mode(torch::kNearest)
                                                .padding_mode(torch::kZeros)
                                                .align_corners(false))
                                 .squeeze(1);
  out.target =
      torch::where(sampled.eq(0), torch::full_like(sampled, 255), sampled - 1).to(torch::kUInt8);
  return out;
}

JointAugmentingSource::JointAugmentingSource(std::unique_ptr<BatchSource> inner,
                                             TransformOptions transforms, uint64_t seed)
    : inner_(std::move(inner)), transforms_(std::move(transforms)), seed_(seed) {
  const std::string key = unsupported_joint_transform(transforms_);
  GPULAB_CHECK(key.empty(), ErrorKind::kInvalidArgument,
               "segmentation augments images and label maps together with rand_x_reflection, "
               "rand_y_reflection, rand_x_translation, rand_y_translation, rand_x_scale, "
               "rand_y_scale and rand_scale; `{}` is not one of them (set image_size to resize)",
               key);
  transforms_.validate();
}

void JointAugmentingSource::start_epoch(int64_t epoch, std::vector<at::Tensor> step_indices) {
  epoch_ = epoch;
  steps_.assign(step_indices.begin(), step_indices.end());
  inner_->start_epoch(epoch, std::move(step_indices));
}

Batch JointAugmentingSource::next() {
  GPULAB_CHECK(!steps_.empty(), ErrorKind::kInternal, "next() past the epoch's last step");
  const at::Tensor indices = steps_.front().to(torch::kCPU, torch::kInt64).contiguous();
  steps_.pop_front();
  Batch batch = inner_->next();
  GPULAB_CHECK(batch.size() == indices.numel(), ErrorKind::kInternal,
               "a batch of {} samples for a step of {}", batch.size(), indices.numel());
  std::vector<SamplePlan> plans;
  const int h = static_cast<int>(batch.input.size(2)), w = static_cast<int>(batch.input.size(3));
  for (int64_t i = 0; i < indices.numel(); ++i) {
    SamplePlan plan =
        plan_sample(transforms_, h, w, sample_seed(seed_, epoch_, indices.data_ptr<int64_t>()[i]));
    // Whole-pixel shifts (as ERFNet's): without scaling, every label stays on
    // exactly the pixel it describes.
    plan.translate_x = std::round(plan.translate_x);
    plan.translate_y = std::round(plan.translate_y);
    plans.push_back(plan);
  }
  return apply_joint_plans(batch, plans);
}

}  // namespace gpulab::data
