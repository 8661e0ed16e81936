// Imports MatConvNet's VGG models (SimpleNN .mat files such as
// imagenet-vgg-verydeep-19.mat) as tensors named like torchvision's VGG.
// Available when built with GPULAB_WITH_MATIO.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpulab::models {

struct MatConvNetImport {
  // "vgg11" | "vgg13" | "vgg16" | "vgg19", decided by the number of conv layers
  // (8, 10, 13 or 16 convolutions plus 3 fully connected layers).
  std::string arch;
  // {"depth": 11|13|16|19, "width": first conv's output channels (64 in the
  // published models), "hidden": fc6's outputs (4096 in the published models)}.
  nlohmann::json options = nlohmann::json::object();
  int64_t num_classes = 0;  // fc8's outputs
  // torchvision's names, float32, CPU, contiguous:
  //   features.<i>.weight [Cout, Cin, 3, 3], features.<i>.bias [Cout], where i
  //     counts every module (conv, relu, max-pool) before the conv in
  //     torchvision's Sequential (vgg19: 0, 2, 5, 7, 10, ...);
  //   classifier.0.weight [hidden, 8*width*7*7] (a [N, C, 7, 7] map flattened
  //     by torch), classifier.3.weight [hidden, hidden],
  //     classifier.6.weight [num_classes, hidden], and their biases.
  std::map<std::string, at::Tensor> tensors;
  // Per-channel (RGB) normalisation in [0, 1] pixel units: MatConvNet feeds
  // 0-255 pixels minus its average image, i.e. (x - averageImage/255) * 255.
  std::vector<double> mean;  // averageImage / 255 (the per-channel mean of a full image)
  std::vector<double> std;   // 1/255 for each channel
  std::vector<std::string> class_names;  // empty when the file has none
  int64_t input_height = 224;            // normalization.imageSize, default 224x224
  int64_t input_width = 224;
};

// Reads a MatConvNet SimpleNN VGG model: MAT v5, v7 (compressed) or v7.3
// (HDF5). Conv weights are stored H x W x Cin x Cout (MATLAB column-major) in
// `weights` = {W, b}, or `filters` / `biases` in the 2014 beta files;
// normalisation and class names come from `meta` (newer) or top-level
// `normalization` / `classes` (older).
//
// Throws Error(kNotFound) for a missing file and Error(kCorruptData) naming the
// file for anything else: not a MAT file or truncated, no `layers`, a conv count
// that is no VGG, layers torchvision's VGG does not have (bnorm, lrn), a weight
// of the wrong rank or kernel size, channels that do not chain (Cin != the
// previous Cout) or widths that do not follow w, 2w, 4w, 8w.
//
// Call from one thread at a time: matio and Debian's (serial) HDF5 keep global
// state. Peak memory is about three times the size of the weights.
MatConvNetImport load_matconvnet_vgg(const std::string& path);

}  // namespace gpulab::models
