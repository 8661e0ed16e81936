// Mini-batches from a data set held on the training device as uint8 and
// normalised there: the only host work per step is choosing indices.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

#include "gpulab/data/batch.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/normalization.h"

namespace gpulab::data {

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
  Batch normalise(const at::Tensor& images, const at::Tensor& targets) const;

  c10::Device device_;
  at::Tensor images_;   // uint8 on device_
  at::Tensor targets_;  // the dataset's targets on device_ (undefined when it has none)
  PixelAffine affine_;
};

}  // namespace gpulab::data
