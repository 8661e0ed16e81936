// AlexNet as in torchvision (the one-GPU variant of "One weird trick…", 64-192-
// 384-256-256 filters), with its module and parameter names (features.{0,3,6,
// 8,10}, classifier.{1,4,6}), so torchvision weights map one to one.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include "gpulab/models/network.h"

namespace gpulab::models {

// Input [N, C, H, W] with H, W >= 63 (224 for ImageNet weights); output
// [N, num_classes]. config.options: {"hidden": 4096}, the size of the two
// hidden linear layers (narrower ones keep tests and small datasets cheap).
class AlexNet : public Network {
 public:
  explicit AlexNet(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
};

}  // namespace gpulab::models
