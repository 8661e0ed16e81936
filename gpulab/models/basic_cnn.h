// basic_cnn: the conv-BN-ReLU digit network of the CloudUT slides (seed 003):
// three units with nf, 2nf, 3nf 3x3 filters, max-pools after the first two,
// one linear layer. Names match the slides' PyTorch code (layer1.conv, …, fc).
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "gpulab/models/network.h"
#include "gpulab/models/sync_batch_norm.h"

namespace gpulab::models {

// conv 3x3 (no bias) -> batch-norm -> ReLU.
class ConvUnitImpl : public torch::nn::Module {
 public:
  ConvUnitImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv_{nullptr};
  SyncBatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvUnit);

// Input [N, in_channels, H, W], H and W divisible by 4; output [N, num_classes].
// config.options: {"nf": 8} (filters in the first unit).
class BasicCnn : public Network {
 public:
  explicit BasicCnn(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  ConvUnit layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

}  // namespace gpulab::models
