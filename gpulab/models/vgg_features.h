// The frozen VGG loss network of perceptual losses (fast neural style
// transfer): torchvision's VGG-16/19 `features`, cut after the deepest layer a
// loss reads, returning the activations of named layers ("relu2_2").
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gpulab/models/weight_file.h"

namespace gpulab::models {

// The layer names of torchvision's vgg16 / vgg19 `features`, in order; the
// i-th name is features[i]: conv1_1, relu1_1, conv1_2, relu1_2, pool1,
// conv2_1, ... pool5 (31 names for vgg16, 37 for vgg19). These are the names
// of MatConvNet's imagenet-vgg-verydeep-* layers and of lengstrom's and
// pytorch/examples' style-transfer code. `arch` is case-insensitive. Throws
// Error(kInvalidArgument) for another arch.
std::vector<std::string> vgg_layer_names(const std::string& arch);

// torchvision's VGG `features` without batch norm (3x3 convs with padding 1,
// ReLU, 2x2 max-pools with stride 2, floor mode), up to the deepest requested
// tap only. Parameters are named features.<i>.weight / features.<i>.bias as in
// torchvision's state dict (i counts convs, ReLUs and pools: vgg16 0, 2, 5, 7,
// 10, ...), and are frozen (requires_grad false) for use as a loss network.
// Buffers `mean` and `std` ([1, 3, 1, 1], float32) hold the input
// normalisation so that it moves with to(device).
//
// Not an XxxImpl/TORCH_MODULE pair: it is held by std::shared_ptr
// (std::make_shared<VggFeatures>(...)) and its forward returns a map.
// Thread-safety: load_weights and to() are setup-only; forward may run from
// several threads at once once set up (it changes no state).
class VggFeatures : public torch::nn::Module {
 public:
  // arch: "vgg16" | "vgg19" (case-insensitive). taps: names from
  // vgg_layer_names(arch), in any order, duplicates allowed; an unknown or
  // empty list is Error(kInvalidArgument) listing the valid names.
  // width: the first conv's channel count before load_weights (stages have
  // width, 2, 4, 8, 8 times it; torchvision's 64). load_weights replaces it by
  // the file's, so only tests that never load weights need to set it.
  // Before load_weights the convs have LibTorch's default initialisation and
  // the normalisation is torchvision's ImageNet mean/std.
  VggFeatures(const std::string& arch, const std::vector<std::string>& taps, int64_t width = 64);

  // Copies the features.* tensors of `weights` (read_weight_file: a
  // torchvision safetensors state dict, a gpulab model file of a vgg16/vgg19,
  // a torch.save .pth, or MatConvNet's imagenet-vgg-verydeep-16/19.mat) onto
  // the module's device; classifier.* and features below the deepest tap are
  // not used. Conv shapes come from the file, so reduced widths (w, 2w, 4w,
  // 8w) load too; they must chain (3 input channels, each conv's input the
  // previous conv's output, 3x3 kernels, bias [Cout]).
  //
  // Normalisation, in 0..255 pixel units: the file's own when it records one
  // (metadata mean/std, which are in [0, 1] units, times 255: a MatConvNet
  // file's average pixel with std 1, a gpulab model file's training
  // normalisation), else torchvision's ImageNet mean 255 * (0.485, 0.456,
  // 0.406), std 255 * (0.229, 0.224, 0.225).
  //
  // Throws Error(kInvalidArgument) for a VGG of another configuration (e.g.
  // vgg19 weights for a vgg16 network, judged by the metadata's arch or the
  // conv indices present), a batch-norm VGG (vgg16_bn) or another
  // architecture; Error(kCorruptData) naming the file for a missing or
  // wrong-shape features tensor at or below the deepest tap, or metadata whose
  // mean/std are not 3 values.
  void load_weights(const WeightFile& weights);

  // x: [N, 3, H, W] float32 RGB pixels in 0..255 on the module's device, H and
  // W large enough for the pools before the deepest tap (>= 2^pools). Returns
  // each tap's activation by name (conv and ReLU taps [N, C, h, w], a pool's
  // after pooling). Gradients flow to x; the parameters are frozen. A tap
  // tensor is not modified by later layers (the ReLUs are not in place).
  std::map<std::string, torch::Tensor> forward(const torch::Tensor& x);

  // (x - mean) / std with the buffers: what features[0] sees.
  torch::Tensor normalize(const torch::Tensor& x) const;

  // Per-channel (RGB) mean/std in 0..255 pixel units (3 values each).
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }

  const std::string& arch() const { return arch_; }  // "vgg16" | "vgg19"
  // The distinct taps, in network order.
  const std::vector<std::string>& taps() const { return taps_; }
  // features index of the deepest tap (the module ends there).
  int64_t deepest_layer() const { return deepest_; }

 private:
  void set_normalization(const std::vector<double>& mean, const std::vector<double>& stdev);

  std::string arch_;
  std::vector<std::string> names_;  // vgg_layer_names(arch_)
  std::vector<std::string> taps_;
  std::vector<bool> is_tap_;  // by features index, up to deepest_
  int64_t deepest_ = 0;
  std::shared_ptr<torch::nn::Module> features_;  // holds the convs as "0", "2", ...
  std::map<int64_t, torch::nn::Conv2d> convs_;   // by features index
  torch::Tensor mean_buffer_, std_buffer_;       // [1, 3, 1, 1]
  std::vector<double> mean_, std_;
};

}  // namespace gpulab::models
