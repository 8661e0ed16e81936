// One training mini-batch as the trainer consumes it, whatever produced it.
#pragma once

#include <ATen/core/Tensor.h>

namespace gpulab::data {

struct Batch {
  at::Tensor input;   // [B, C, H, W] float32, normalised, on the device
  at::Tensor target;  // [B] int64 on the device
};

}  // namespace gpulab::data
