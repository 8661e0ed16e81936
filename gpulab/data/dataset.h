// An in-memory labelled image set: the common currency between datastores,
// samplers and the trainer for data that fits in memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace gpulab::data {

struct Dataset {
  at::Tensor images;  // [N, C, H, W] uint8, RGB channel order when C == 3
  at::Tensor labels;  // [N] int64 in [0, class_names.size())
  std::vector<std::string> class_names;
  std::string source;  // where it came from, for messages

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

// The rows of `ds` at `indices` ([K] int64), sharing class names and source.
Dataset subset(const Dataset& ds, const at::Tensor& indices);

// Images per class, in class-index order (MATLAB's countEachLabel).
std::vector<int64_t> count_each_label(const Dataset& ds);

// A table "Label | Count" for printing before training.
std::string format_label_counts(const Dataset& ds);

}  // namespace gpulab::data
