// The image transformation network of fast neural style transfer (Johnson et
// al., ECCV 2016), layer for layer and name for name as pytorch/examples
// fast_neural_style/neural_style/transformer_net.py, so its state dicts load one to one.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/functional/instancenorm.h>  // modules/instancenorm.h needs it first (1.13)
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/modules/padding.h>

#include <map>
#include <string>

#include "gpulab/models/network.h"

namespace gpulab::models {

// Channels of the network's input and output: RGB.
constexpr int64_t kTransformerNetChannels = 3;
// The smallest input height and width: the reflection padding of the 9x9
// conv1 (4 pixels) and of the 3x3 convs at a quarter of the size (1 pixel)
// needs more rows and columns than it pads.
constexpr int64_t kTransformerNetMinSize = 5;

// The reference's ConvLayer(in, out, kernel, stride): ReflectionPad2d(kernel / 2)
// then Conv2d(in, out, kernel, stride) with a bias, no padding of its own.
// [N, in, H, W] -> [N, out, ceil(H / stride), ceil(W / stride)] (odd kernels).
// Names: reflection_pad (no tensors), conv2d.
class TransformerNetConvImpl : public torch::nn::Module {
 public:
  TransformerNetConvImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                         int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::ReflectionPad2d reflection_pad_{nullptr};
  torch::nn::Conv2d conv2d_{nullptr};
};
TORCH_MODULE(TransformerNetConv);

// The reference's ResidualBlock(channels): in2(conv2(relu(in1(conv1(x))))) + x
// with 3x3 stride-1 TransformerNetConvs and affine InstanceNorm2d (eps 1e-5,
// no running statistics); no activation after the sum. [N, C, H, W] -> same
// shape. Names: conv1, in1, conv2, in2.
class TransformerNetResidualImpl : public torch::nn::Module {
 public:
  explicit TransformerNetResidualImpl(int64_t channels);
  torch::Tensor forward(torch::Tensor x);

 private:
  TransformerNetConv conv1_{nullptr}, conv2_{nullptr};
  torch::nn::InstanceNorm2d in1_{nullptr}, in2_{nullptr};
};
TORCH_MODULE(TransformerNetResidual);

// The reference's UpsampleConvLayer(in, out, kernel, stride, upsample):
// nearest-neighbour upsampling by the integer `upsample` (interpolate(mode=
// 'nearest', scale_factor=upsample); 0 = none), then a TransformerNetConv.
// [N, in, H, W] -> [N, out, upsample H, upsample W] at stride 1. Names:
// reflection_pad (no tensors), conv2d.
class TransformerNetUpsampleConvImpl : public torch::nn::Module {
 public:
  TransformerNetUpsampleConvImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                 int64_t stride, int64_t upsample);
  torch::Tensor forward(torch::Tensor x);

 private:
  int64_t upsample_ = 0;
  torch::nn::ReflectionPad2d reflection_pad_{nullptr};
  torch::nn::Conv2d conv2d_{nullptr};
};
TORCH_MODULE(TransformerNetUpsampleConv);

// TransformerNet ("transformer_net" in the registry): conv1 9x9 3->32, conv2
// 3x3/2 32->64, conv3 3x3/2 64->128, each followed by affine InstanceNorm2d
// in1..in3 and ReLU; res1..res5 TransformerNetResidual(128); deconv1, deconv2
// (nearest x2 upsampling, 3x3 conv, 128->64->32) followed by in4, in5 and
// ReLU; deconv3 9x9 32->3 with no output activation. 1,679,235 parameters,
// no buffers: the state dict has exactly the reference's 62 names.
//
// Input [N, 3, H, W] float32 RGB pixels in 0..255 (pytorch/examples feeds
// ToTensor() * 255; gpulab's normalisation mean 0, std 1/255); output
// [N, 3, H', W'] in the same units, unclamped. Fully convolutional: any H, W
// >= kTransformerNetMinSize. The strided convs give ceil(H / 2), then
// ceil(H / 4) rows, and upsampling doubles that twice, so H' = 4 ceil(H / 4):
// the input size for multiples of 4, else rounded up to the next one (250 ->
// 252, 33 -> 36), with the extra rows and columns at the bottom and right, as
// the reference does. Weights: PyTorch's default initialisation.
//
// Throws Error(kInvalidArgument) for config.in_channels other than 3, or a
// nonzero config.height / width below kTransformerNetMinSize, and in forward
// for an input that is not [N, 3, H, W] of that size. config.num_classes is
// not used (the output always has 3 channels); config.options are none.
class TransformerNet : public Network {
 public:
  explicit TransformerNet(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  TransformerNetConv conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, deconv3_{nullptr};
  torch::nn::InstanceNorm2d in1_{nullptr}, in2_{nullptr}, in3_{nullptr}, in4_{nullptr},
      in5_{nullptr};
  TransformerNetResidual res1_{nullptr}, res2_{nullptr}, res3_{nullptr}, res4_{nullptr},
      res5_{nullptr};
  TransformerNetUpsampleConv deconv1_{nullptr}, deconv2_{nullptr};
};

// The state dict without the entries PyTorch before 0.4 saved for
// InstanceNorm2d (then tracking running statistics by default), which the
// models pytorch/examples publishes still hold: every name that
// `in\d+\.running_(mean|var)$` finds (Python's re.search, as the reference's
// stylize() deletes them), e.g. "in1.running_mean", "res3.in2.running_var".
// Every other entry is kept unchanged.
std::map<std::string, at::Tensor> drop_legacy_instance_norm_stats(
    std::map<std::string, at::Tensor> tensors);

}  // namespace gpulab::models
