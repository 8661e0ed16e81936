// Joint augmentation of images and their label maps: the same random
// reflection, scale and translation applied to a batch's inputs and targets,
// on the device (ERFNet's flip + shift recipe, MATLAB's randomAffine2d for
// CamVid). Each sample's choices come from plan_sample with
// sample_seed(seed, epoch, sample index), so a resumed run draws the same.
#pragma once

#include <ATen/core/Tensor.h>

#include <deque>
#include <memory>

#include "gpulab/data/batch_source.h"
#include "gpulab/data/transforms.h"

namespace gpulab::data {

// Whether `transforms` asks for something joint augmentation cannot do (a
// crop, a resize or colour jitter); "" when it can, else the option's key.
std::string unsupported_joint_transform(const TransformOptions& transforms);

// `input` [B, C, H, W] float (normalised), `target` [B, H, W] uint8 label ids
// (255 = no label), on any device; `plans` one per sample. The input is
// resampled bilinear and filled with 0 outside the image, the target
// nearest-neighbour and filled with 255, so both stay aligned pixel for pixel.
Batch apply_joint_plans(const Batch& batch, const std::vector<SamplePlan>& plans);

// Wraps a source of label-map batches and augments each batch it gives;
// translations are rounded to whole pixels.
class JointAugmentingSource : public BatchSource {
 public:
  // `transforms`: reflection, scale and translation keys only (checked).
  JointAugmentingSource(std::unique_ptr<BatchSource> inner, TransformOptions transforms,
                        uint64_t seed);
  int64_t size() const override { return inner_->size(); }
  void start_epoch(int64_t epoch, std::vector<at::Tensor> step_indices) override;
  Batch next() override;
  double wait_seconds() const override { return inner_->wait_seconds(); }
  bool may_drop_samples() const override { return inner_->may_drop_samples(); }

 private:
  std::unique_ptr<BatchSource> inner_;
  TransformOptions transforms_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  std::deque<at::Tensor> steps_;  // the sample indices of the steps not yet given
};

}  // namespace gpulab::data
