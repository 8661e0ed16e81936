// Mini-batches from a data set held on the training device as uint8 and
// normalised there: the only host work per step is choosing indices.
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

struct Batch {
  at::Tensor input;   // [B, C, H, W] float32, normalised, on the device
  at::Tensor target;  // [B] int64 on the device
};

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
  at::Tensor scale_;   // [1, C, 1, 1] float: 1 / (255 std)
  at::Tensor shift_;   // [1, C, 1, 1] float: -mean / std
};

}  // namespace gpulab::data
