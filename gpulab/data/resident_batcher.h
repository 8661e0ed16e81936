// Mini-batches from a data set held on the training device as uint8 and
// normalised there: the only host work per step is choosing indices.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

#include "gpulab/data/batch.h"
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

class ResidentBatcher {
 public:
  // Copies the images to `device` once. channels_last stores them NHWC.
  ResidentBatcher(const Dataset& ds, const Normalization& norm, c10::Device device,
                  bool channels_last = false);
  // `indices`: [B] int64 (any device).
  Batch batch(const at::Tensor& indices) const;
  // Rows [begin, end) in stored order (for evaluation).
  Batch range(int64_t begin, int64_t end) const;
  int64_t size() const { return images_.size(0); }
  c10::Device device() const { return device_; }

 private:
  Batch normalise(const at::Tensor& images, const at::Tensor& labels) const;

  c10::Device device_;
  at::Tensor images_;  // uint8 on device_
  at::Tensor labels_;  // int64 on device_
  PixelAffine affine_;
};

}  // namespace gpulab::data
