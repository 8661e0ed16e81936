// Per-device numeric settings of the training step: channels-last layout and
// bf16 autocast on CUDA devices, plain fp32 NCHW on CPUs.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

#include "gpulab/models/network.h"
#include "gpulab/train/train_options.h"

namespace gpulab::train {

// RAII: autocast on for its lifetime (no-op when disabled).
class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  AutocastGuard(AutocastGuard&& other) noexcept : enabled_(other.enabled_) {
    other.enabled_ = false;
  }

 private:
  bool enabled_;
};

class StepPrecision {
 public:
  StepPrecision(const c10::Device& device, const TrainOptions& options);
  bool channels_last() const { return channels_last_; }
  bool bf16() const { return bf16_; }
  // Converts 4-D parameters to channels-last when enabled.
  void prepare_model(models::Network& model) const;
  // The input in the layout the model expects.
  at::Tensor prepare(const at::Tensor& input) const;
  AutocastGuard autocast() const { return AutocastGuard(bf16_); }
  // ", bf16 autocast, channels-last" or "".
  std::string describe() const;

 private:
  bool channels_last_ = false;
  bool bf16_ = false;
};

}  // namespace gpulab::train
