// An in-memory image set with task-defined targets: the common currency
// between datastores, samplers and the trainer for data that fits in memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "gpulab/data/label_spec.h"

namespace gpulab::data {

struct Dataset {
  at::Tensor images;  // [N, C, H, W] uint8, RGB channel order when C == 3
  // Task-defined, one row per image: [N] int64 class indices in
  // [0, label_spec.size()) for classification, [N, H, W] uint8 label ids
  // (label_spec.ignore_value = no label) for segmentation, or undefined for
  // unlabelled images.
  at::Tensor targets;
  LabelSpec label_spec;
  std::string source;  // where it came from, for messages

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

// The rows of `ds` at `indices` ([K] int64), sharing the label spec and source.
Dataset subset(const Dataset& ds, const at::Tensor& indices);

// Images per class, in class-index order (MATLAB's countEachLabel), of a set
// with class-index targets.
std::vector<int64_t> count_each_label(const Dataset& ds);

// MATLAB's countEachLabel for pixel labels, per class in index order: the
// pixels of the class, and the pixels of the images in which it appears
// (ImagePixelCount, what median-frequency class weights divide by). Pixels
// with no label (label_spec.ignore_value) count for no class.
struct PixelLabelCounts {
  std::vector<int64_t> pixels;
  std::vector<int64_t> image_pixels;
};
PixelLabelCounts count_each_pixel_label(const Dataset& ds);

// A table for printing before training: "Label | Count" for class-index
// targets, "Label | PixelCount | ImagePixelCount" for label maps.
std::string format_label_counts(const Dataset& ds);
// The "Label | PixelCount | ImagePixelCount" table of `counts` (one per
// class of `labels`).
std::string format_label_counts(const LabelSpec& labels, const PixelLabelCounts& counts);

}  // namespace gpulab::data
