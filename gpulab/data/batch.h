// One mini-batch as the trainer and the evaluators consume it, whatever
// produced it.
#pragma once

#include <ATen/core/Tensor.h>

namespace gpulab::data {

struct Batch {
  at::Tensor input;  // [B, C, H, W] float32, normalised, on the device
  // Task-defined, on the device: [B] int64 class indices, [B, H, W] uint8
  // label ids, or undefined (unlabelled images).
  at::Tensor target;

  int64_t size() const { return input.defined() ? input.size(0) : 0; }
};

}  // namespace gpulab::data
