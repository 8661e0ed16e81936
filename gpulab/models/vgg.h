// VGG-11/13/16/19, with or without batch-norm, with torchvision's module and
// parameter names (features.<i>, classifier.{0,3,6}), so torchvision and
// MatConvNet weights map one to one.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include "gpulab/models/network.h"

namespace gpulab::models {

// Input [N, C, H, W] with H, W >= 32; output [N, num_classes].
// config.options: {"depth": 11|13|16|19, "batch_norm": false, "width": 64,
// "hidden": 4096}. width is the first conv's channel count (the stages have
// width, 2, 4, 8, 8 times it); hidden the size of the two hidden linear layers.
// Reduced widths keep tests and small datasets cheap; torchvision uses the defaults.
class Vgg : public Network {
 public:
  explicit Vgg(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
};

}  // namespace gpulab::models
