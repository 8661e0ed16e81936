// ResNet-18/34/50/101/152 with torchvision's module and parameter names
// (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, …, fc), so torchvision
// weights map one to one.
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "gpulab/models/network.h"
#include "gpulab/models/sync_batch_norm.h"

namespace gpulab::models {

// torchvision.models.resnet.BasicBlock: 3x3 -> 3x3, expansion 1. Unlike
// torchvision's (which refuses dilation > 1), each 3x3 conv may be dilated
// (padding = dilation), as DeepLab's backbone needs: conv1 takes `stride` and
// `dilation1`, conv2 `dilation2`.
class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, int64_t dilation1 = 1,
                 int64_t dilation2 = 1);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  SyncBatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision.models.resnet.Bottleneck (ResNet v1.5: the stride sits on the
// 3x3 conv): 1x1 -> 3x3 -> 1x1, expansion 4.
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  SyncBatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

// Input [N, C, H, W]; output [N, num_classes].
// config.options: {"depth": 18|34|50|101|152, "small_input": bool}. small_input
// replaces the 7x7/2 stem and its max-pool by a 3x3/1 conv (for 28x28 or
// 32x32 inputs); it defaults to true below 64 pixels.
class ResNet : public Network {
 public:
  explicit ResNet(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  template <typename Block>
  torch::nn::Sequential make_layer(const std::string& name, int64_t planes, int64_t blocks,
                                   int64_t stride);

  bool small_input_ = false;
  int64_t in_planes_ = 64;
  torch::nn::Conv2d conv1_{nullptr};
  SyncBatchNorm2d bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

}  // namespace gpulab::models
