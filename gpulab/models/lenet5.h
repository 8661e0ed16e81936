// lenet5: LeCun's LeNet-5 (ReLU, max-pool, no batch-norm): conv1 6@5x5 (padding
// 2), conv2 16@5x5, fc1 120, fc2 84, fc3 num_classes.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "gpulab/models/network.h"

namespace gpulab::models {

// Input [N, C, H, W] with H, W >= 12; output [N, num_classes].
class LeNet5 : public Network {
 public:
  explicit LeNet5(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
};

}  // namespace gpulab::models
