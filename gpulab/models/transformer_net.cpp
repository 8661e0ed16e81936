// TransformerNet's layers, the size checks and the legacy state-dict filter.
#include "gpulab/models/transformer_net.h"

#include <torch/torch.h>

#include <regex>

#include "gpulab/core/error.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace {

// The reference's torch.nn.InstanceNorm2d(channels, affine=True): eps 1e-5,
// a scale and shift, no running statistics (so no buffers, and train and eval
// mode normalise alike).
nn::InstanceNorm2d instance_norm(int64_t channels) {
  return nn::InstanceNorm2d(
      nn::InstanceNorm2dOptions(channels).eps(1e-5).affine(true).track_running_stats(false));
}

nn::Conv2d unpadded_conv(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                         int64_t stride) {
  return nn::Conv2d(
      nn::Conv2dOptions(in_channels, out_channels, kernel_size).stride(stride).bias(true));
}

void check_size(int64_t height, int64_t width, const char* what) {
  GPULAB_CHECK(height >= kTransformerNetMinSize && width >= kTransformerNetMinSize,
               ErrorKind::kInvalidArgument,
               "transformer_net needs {} of at least {}x{} pixels (its reflection padding "
               "needs more pixels than it pads); got {}x{}: use a larger image",
               what, kTransformerNetMinSize, kTransformerNetMinSize, height, width);
}

}  // namespace

TransformerNetConvImpl::TransformerNetConvImpl(int64_t in_channels, int64_t out_channels,
                                               int64_t kernel_size, int64_t stride) {
  reflection_pad_ = register_module(
      "reflection_pad", nn::ReflectionPad2d(nn::ReflectionPad2dOptions(kernel_size / 2)));
  conv2d_ =
      register_module("conv2d", unpadded_conv(in_channels, out_channels, kernel_size, stride));
}

torch::Tensor TransformerNetConvImpl::forward(torch::Tensor x) {
  return conv2d_->forward(reflection_pad_->forward(x));
}

TransformerNetResidualImpl::TransformerNetResidualImpl(int64_t channels) {
  conv1_ = register_module("conv1", TransformerNetConv(channels, channels, 3, 1));
  in1_ = register_module("in1", instance_norm(channels));
  conv2_ = register_module("conv2", TransformerNetConv(channels, channels, 3, 1));
  in2_ = register_module("in2", instance_norm(channels));
}

torch::Tensor TransformerNetResidualImpl::forward(torch::Tensor x) {
  auto out = in1_->forward(conv1_->forward(x)).relu_();
  return in2_->forward(conv2_->forward(out)) + x;
}

TransformerNetUpsampleConvImpl::TransformerNetUpsampleConvImpl(int64_t in_channels,
                                                               int64_t out_channels,
                                                               int64_t kernel_size, int64_t stride,
                                                               int64_t upsample)
    : upsample_(upsample) {
  reflection_pad_ = register_module(
      "reflection_pad", nn::ReflectionPad2d(nn::ReflectionPad2dOptions(kernel_size / 2)));
  conv2d_ =
      register_module("conv2d", unpadded_conv(in_channels, out_channels, kernel_size, stride));
}

torch::Tensor TransformerNetUpsampleConvImpl::forward(torch::Tensor x) {
  if (upsample_ != 0) {
    // interpolate(x, mode='nearest', scale_factor=upsample) as the reference:
    // the output size is floor(upsample * size) and the scale goes to the
    // kernel. Called with the scale alone (not LibTorch's interpolate, which
    // computes the size first), so an exported TorchScript trace upsamples
    // inputs of any size rather than the size it was traced at.
    const auto s = static_cast<double>(upsample_);
    const std::vector<double> scales = {s, s};
    x = at::upsample_nearest2d(x, c10::nullopt, scales);
  }
  return conv2d_->forward(reflection_pad_->forward(x));
}

TransformerNet::TransformerNet(const ModelConfig& config) {
  GPULAB_CHECK(config.in_channels == kTransformerNetChannels, ErrorKind::kInvalidArgument,
               "transformer_net takes RGB images (3 input channels); got in_channels {}: "
               "convert the images to RGB",
               config.in_channels);
  // A zero size means "not known yet" and passes.
  if (config.height != 0 || config.width != 0) {
    check_size(config.height, config.width, "a configured input");
  }
  conv1_ = register_module("conv1", TransformerNetConv(3, 32, 9, 1));
  in1_ = register_module("in1", instance_norm(32));
  conv2_ = register_module("conv2", TransformerNetConv(32, 64, 3, 2));
  in2_ = register_module("in2", instance_norm(64));
  conv3_ = register_module("conv3", TransformerNetConv(64, 128, 3, 2));
  in3_ = register_module("in3", instance_norm(128));
  res1_ = register_module("res1", TransformerNetResidual(128));
  res2_ = register_module("res2", TransformerNetResidual(128));
  res3_ = register_module("res3", TransformerNetResidual(128));
  res4_ = register_module("res4", TransformerNetResidual(128));
  res5_ = register_module("res5", TransformerNetResidual(128));
  deconv1_ = register_module("deconv1", TransformerNetUpsampleConv(128, 64, 3, 1, 2));
  in4_ = register_module("in4", instance_norm(64));
  deconv2_ = register_module("deconv2", TransformerNetUpsampleConv(64, 32, 3, 1, 2));
  in5_ = register_module("in5", instance_norm(32));
  deconv3_ = register_module("deconv3", TransformerNetConv(32, 3, 9, 1));
}

torch::Tensor TransformerNet::forward(torch::Tensor x) {
  GPULAB_CHECK(x.dim() == 4 && x.size(1) == kTransformerNetChannels, ErrorKind::kInvalidArgument,
               "transformer_net takes an [N, 3, H, W] batch of RGB pixels; got a tensor of shape "
               "[{}]",
               fmt::join(x.sizes(), ", "));
  check_size(x.size(2), x.size(3), "an input");
  auto y = in1_->forward(conv1_->forward(x)).relu_();
  y = in2_->forward(conv2_->forward(y)).relu_();
  y = in3_->forward(conv3_->forward(y)).relu_();
  y = res5_->forward(res4_->forward(res3_->forward(res2_->forward(res1_->forward(y)))));
  y = in4_->forward(deconv1_->forward(y)).relu_();
  y = in5_->forward(deconv2_->forward(y)).relu_();
  return deconv3_->forward(y);
}

std::map<std::string, at::Tensor> drop_legacy_instance_norm_stats(
    std::map<std::string, at::Tensor> tensors) {
  // std::regex_search with ECMAScript's `$` (end of the name) finds what
  // Python's re.search does for names without a newline.
  static const std::regex legacy(R"(in\d+\.running_(mean|var)$)");
  for (auto it = tensors.begin(); it != tensors.end();) {
    it = std::regex_search(it->first, legacy) ? tensors.erase(it) : std::next(it);
  }
  return tensors;
}

}  // namespace gpulab::models
