// Per-channel input normalisation: computed from a data set, recorded in
// model files, applied to uint8 pixels on the device in one fused pass.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

#include "gpulab/data/dataset.h"

namespace gpulab::data {

// Per-channel normalisation in [0, 1] pixel units: x' = (x / 255 - mean) / std.
struct Normalization {
  std::vector<double> mean;
  std::vector<double> std;
};

// Mean and standard deviation per channel over the whole set.
Normalization compute_normalization(const Dataset& ds);

// The normalisation as x' = shift + x * scale for uint8 pixels x: scale and
// shift are [1, C, 1, 1] float32 on `device`.
struct PixelAffine {
  at::Tensor scale;  // 1 / (255 std)
  at::Tensor shift;  // -mean / std
  // [N, C, H, W] uint8 (any layout) -> normalised float32 laid out as
  // `format` (default: as the input suggests): one pass casts into the
  // output layout, one fused multiply-add runs in place.
  at::Tensor apply(const at::Tensor& pixels) const;
  at::Tensor apply(const at::Tensor& pixels, at::MemoryFormat format) const;
};
PixelAffine pixel_affine(const Normalization& norm, c10::Device device);

}  // namespace gpulab::data
