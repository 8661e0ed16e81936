// Per-sample transforms and augmentation (torchvision's transforms and
// MATLAB's imageDataAugmenter): what to do is TransformOptions, the random
// choices for one sample are a SamplePlan drawn from (seed, epoch, sample), so
// a sample looks the same whichever thread decodes it.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "gpulab/core/options.h"

namespace gpulab::data {

using Range = std::array<double, 2>;  // [min, max], inclusive

// Applied in this order: crop/resize to the output size, reflection, scale,
// translation (about the image centre, zero fill), colour jitter. Sizes are in
// pixels, 0 = not set.
struct TransformOptions {
  // Output channels: 1 (grey) or 3 (RGB); images are converted to match.
  // 0 = the first image's (resolved by with_output_size in loader.h).
  GPULAB_ARG(int, channels) = 3;
  // Output size when no crop sets it; 0 = the source image's (see output_size).
  GPULAB_ARG(int, height) = 0;
  GPULAB_ARG(int, width) = 0;
  // Resize every image to resize_height x resize_width (before a centre crop).
  GPULAB_ARG(int, resize_height) = 0;
  GPULAB_ARG(int, resize_width) = 0;
  // Resize the shorter side to this many pixels, keeping the aspect ratio
  // (torchvision's Resize(int)), before a centre crop; not with resize.
  GPULAB_ARG(int, resize_shorter) = 0;
  // Centre crop to this size (after the resize, if any).
  GPULAB_ARG(int, center_crop_height) = 0;
  GPULAB_ARG(int, center_crop_width) = 0;
  // RandomResizedCrop(size, scale, ratio): a random region of `scale` of the
  // area and aspect ratio in `ratio` (log-uniform), resized to size x size.
  GPULAB_ARG(int, random_resized_crop) = 0;
  GPULAB_ARG(Range, crop_scale) = Range{0.08, 1.0};
  GPULAB_ARG(Range, crop_ratio) = Range{3.0 / 4.0, 4.0 / 3.0};
  // RandXReflection / RandYReflection: mirror with probability 1/2.
  GPULAB_ARG(bool, x_reflection) = false;
  GPULAB_ARG(bool, y_reflection) = false;
  // RandXTranslation / RandYTranslation: shift by a uniform amount in pixels.
  GPULAB_ARG(Range, x_translation) = Range{0, 0};
  GPULAB_ARG(Range, y_translation) = Range{0, 0};
  // RandXScale / RandYScale: scale factor about the centre, uniform.
  GPULAB_ARG(Range, x_scale) = Range{1, 1};
  GPULAB_ARG(Range, y_scale) = Range{1, 1};
  // ColorJitter(brightness, contrast, saturation): factors uniform in
  // [max(0, 1 - v), 1 + v]; saturation only for 3 channels.
  GPULAB_ARG(double, brightness) = 0;
  GPULAB_ARG(double, contrast) = 0;
  GPULAB_ARG(double, saturation) = 0;

 public:
  // Any random choice configured (the set then cannot stay device-resident).
  bool random() const;
  // The same geometry without randomness, for validation: a random resized
  // crop becomes a resize of the whole image to its size.
  TransformOptions deterministic() const;
  // {height, width} of the output for a source of src_h x src_w.
  std::array<int, 2> output_size(int src_h, int src_w) const;
  // Throws Error(kInvalidArgument) naming the option that is out of range.
  void validate() const;
  // Keys as in --config YAML (see docs/cli.md); to_json has every one.
  nlohmann::json to_json() const;
};

// Overlays the keys of `j` that name transforms onto `options`; other keys
// are ignored. A range is "a,b", [a, b] or one number v (= [-v, v] for
// translations, [v, v] otherwise). Throws Error(kInvalidArgument).
void apply_transform_json(TransformOptions& options, const nlohmann::json& j);
// The transform keys apply_transform_json reads.
bool is_transform_key(const std::string& key);

// Integer source region, in source pixels.
struct CropBox {
  int x = 0, y = 0, width = 0, height = 0;
};

// The choices for one sample: the pure function apply_sample_plan turns an
// image into the output with them.
struct SamplePlan {
  CropBox crop;        // region of the source taken
  int out_height = 0;  // output size
  int out_width = 0;
  bool flip_x = false;  // mirror left-right
  bool flip_y = false;  // mirror up-down
  double scale_x = 1, scale_y = 1;
  double translate_x = 0, translate_y = 0;  // pixels of the output, + = right/down
  double brightness = 1, contrast = 1, saturation = 1;
};

// Draws the plan for a src_h x src_w source. `sample_seed` comes from
// sample_seed(); the same inputs give the same plan on every platform.
SamplePlan plan_sample(const TransformOptions& options, int src_h, int src_w, uint64_t sample_seed);
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t sample_index);

// `image`: [H, W, C] uint8 CPU (C = 1 or 3, RGB); returns [out_h, out_w, C]
// uint8. Bilinear resampling, zero fill outside the image. Needs OpenCV.
at::Tensor apply_sample_plan(const at::Tensor& image, const SamplePlan& plan);

}  // namespace gpulab::data
