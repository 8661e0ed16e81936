// ResNet layers and torchvision's initialisation.
#include "gpulab/models/resnet.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace {

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride, int64_t dilation = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3)
                        .stride(stride)
                        .padding(dilation)
                        .dilation(dilation)
                        .bias(false));
}

nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

// torchvision's projection shortcut: 1x1 conv with the block's stride + BN.
nn::Sequential downsample(int64_t in, int64_t out, int64_t stride) {
  return nn::Sequential(conv1x1(in, out, stride), SyncBatchNorm2d(out));
}

struct ResNetLayout {
  bool bottleneck;
  std::vector<int64_t> blocks;
};

ResNetLayout layout_for_depth(int64_t depth) {
  switch (depth) {
    case 18:
      return {false, {2, 2, 2, 2}};
    case 34:
      return {false, {3, 4, 6, 3}};
    case 50:
      return {true, {3, 4, 6, 3}};
    case 101:
      return {true, {3, 4, 23, 3}};
    case 152:
      return {true, {3, 8, 36, 3}};
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "resnet: depth {} is not supported; valid: 18, 34, 50, 101, 152", depth);
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, int64_t dilation1,
                               int64_t dilation2) {
  conv1_ = register_module("conv1", conv3x3(in_planes, planes, stride, dilation1));
  bn1_ = register_module("bn1", SyncBatchNorm2d(planes));
  conv2_ = register_module("conv2", conv3x3(planes, planes, 1, dilation2));
  bn2_ = register_module("bn2", SyncBatchNorm2d(planes));
  if (stride != 1 || in_planes != planes) {
    downsample_ = register_module("downsample", downsample(in_planes, planes, stride));
  }
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  auto out = bn1_->forward(conv1_->forward(x)).relu_();
  out = bn2_->forward(conv2_->forward(out));
  auto identity = downsample_ ? downsample_->forward(x) : x;
  return (out + identity).relu_();
}

BottleneckImpl::BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride) {
  const int64_t out_planes = planes * kExpansion;
  conv1_ = register_module("conv1", conv1x1(in_planes, planes));
  bn1_ = register_module("bn1", SyncBatchNorm2d(planes));
  conv2_ = register_module("conv2", conv3x3(planes, planes, stride));
  bn2_ = register_module("bn2", SyncBatchNorm2d(planes));
  conv3_ = register_module("conv3", conv1x1(planes, out_planes));
  bn3_ = register_module("bn3", SyncBatchNorm2d(out_planes));
  if (stride != 1 || in_planes != out_planes) {
    downsample_ = register_module("downsample", downsample(in_planes, out_planes, stride));
  }
}

torch::Tensor BottleneckImpl::forward(torch::Tensor x) {
  auto out = bn1_->forward(conv1_->forward(x)).relu_();
  out = bn2_->forward(conv2_->forward(out)).relu_();
  out = bn3_->forward(conv3_->forward(out));
  auto identity = downsample_ ? downsample_->forward(x) : x;
  return (out + identity).relu_();
}

ResNet::ResNet(const ModelConfig& config) {
  const ResNetLayout layout = layout_for_depth(config.options.value("depth", 18));
  small_input_ = config.options.value("small_input", config.height < 64);

  conv1_ = register_module(
      "conv1",
      small_input_
          ? conv3x3(config.in_channels, 64, 1)
          : nn::Conv2d(
                nn::Conv2dOptions(config.in_channels, 64, 7).stride(2).padding(3).bias(false)));
  bn1_ = register_module("bn1", SyncBatchNorm2d(64));
  const auto& b = layout.blocks;
  if (layout.bottleneck) {
    layer1_ = make_layer<Bottleneck>("layer1", 64, b[0], 1);
    layer2_ = make_layer<Bottleneck>("layer2", 128, b[1], 2);
    layer3_ = make_layer<Bottleneck>("layer3", 256, b[2], 2);
    layer4_ = make_layer<Bottleneck>("layer4", 512, b[3], 2);
  } else {
    layer1_ = make_layer<BasicBlock>("layer1", 64, b[0], 1);
    layer2_ = make_layer<BasicBlock>("layer2", 128, b[1], 2);
    layer3_ = make_layer<BasicBlock>("layer3", 256, b[2], 2);
    layer4_ = make_layer<BasicBlock>("layer4", 512, b[3], 2);
  }
  fc_ = register_module("fc", nn::Linear(in_planes_, config.num_classes));

  // torchvision: kaiming-normal (fan_out, relu) convs, BN weight 1 / bias 0.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<SyncBatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

template <typename Block>
nn::Sequential ResNet::make_layer(const std::string& name, int64_t planes, int64_t blocks,
                                  int64_t stride) {
  nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    layer->push_back(Block(in_planes_, planes, i == 0 ? stride : 1));
    in_planes_ = planes * Block::ContainedType::kExpansion;
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
