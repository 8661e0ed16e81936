// ResNet layers and torchvision's initialisation.
#include "gpulab/models/resnet.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace {

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride) {
  conv1_ = register_module("conv1", conv3x3(in_planes, planes, stride));
  bn1_ = register_module("bn1", nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", conv3x3(planes, planes, 1));
  bn2_ = register_module("bn2", nn::BatchNorm2d(planes));
  if (stride != 1 || in_planes != planes) {
    downsample_ = register_module(
        "downsample",
        nn::Sequential(
            nn::Conv2d(nn::Conv2dOptions(in_planes, planes, 1).stride(stride).bias(false)),
            nn::BatchNorm2d(planes)));
  }
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  auto out = bn1_->forward(conv1_->forward(x)).relu_();
  out = bn2_->forward(conv2_->forward(out));
  auto identity = downsample_ ? downsample_->forward(x) : x;
  return (out + identity).relu_();
}

ResNet::ResNet(const ModelConfig& config) {
  const int64_t depth = config.options.value("depth", 18);
  small_input_ = config.options.value("small_input", config.height < 64);
  std::vector<int64_t> blocks;
  if (depth == 18)
    blocks = {2, 2, 2, 2};
  else if (depth == 34)
    blocks = {3, 4, 6, 3};
  else
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "resnet: depth {} is not supported; valid: 18, 34",
                depth);

  conv1_ = register_module(
      "conv1",
      small_input_
          ? conv3x3(config.in_channels, 64, 1)
          : nn::Conv2d(
                nn::Conv2dOptions(config.in_channels, 64, 7).stride(2).padding(3).bias(false)));
  bn1_ = register_module("bn1", nn::BatchNorm2d(64));
  layer1_ = make_layer("layer1", 64, blocks[0], 1);
  layer2_ = make_layer("layer2", 128, blocks[1], 2);
  layer3_ = make_layer("layer3", 256, blocks[2], 2);
  layer4_ = make_layer("layer4", 512, blocks[3], 2);
  fc_ = register_module("fc", nn::Linear(512, config.num_classes));

  // torchvision: kaiming-normal (fan_out, relu) convs, BN weight 1 / bias 0.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

nn::Sequential ResNet::make_layer(const std::string& name, int64_t planes, int64_t blocks,
                                  int64_t stride) {
  nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    layer->push_back(BasicBlock(in_planes_, planes, i == 0 ? stride : 1));
    in_planes_ = planes;
  }
  return register_module(name, layer);
}

torch::Tensor ResNet::forward(torch::Tensor x) {
  x = bn1_->forward(conv1_->forward(x)).relu_();
  if (!small_input_) x = torch::max_pool2d(x, 3, 2, 1);
  x = layer4_->forward(layer3_->forward(layer2_->forward(layer1_->forward(x))));
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc_->forward(x);
}

}  // namespace gpulab::models
