// basic_cnn layers.
#include "gpulab/models/basic_cnn.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::models {

ConvUnitImpl::ConvUnitImpl(int64_t in_channels, int64_t out_channels) {
  conv_ = register_module(
      "conv", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(in_channels, out_channels, 3).padding(1).bias(false)));
  bn_ = register_module("bn", SyncBatchNorm2d(out_channels));
}

torch::Tensor ConvUnitImpl::forward(torch::Tensor x) {
  return bn_->forward(conv_->forward(x)).relu_();
}

BasicCnn::BasicCnn(const ModelConfig& config) {
  const int64_t nf = config.options.value("nf", 8);
  GPULAB_CHECK(nf > 0, ErrorKind::kInvalidArgument, "basic_cnn: nf must be positive, got {}", nf);
  GPULAB_CHECK(config.height % 4 == 0 && config.width % 4 == 0, ErrorKind::kInvalidArgument,
               "basic_cnn needs an input size divisible by 4, got {}x{}", config.height,
               config.width);
  layer1_ = register_module("layer1", ConvUnit(config.in_channels, nf));
  layer2_ = register_module("layer2", ConvUnit(nf, 2 * nf));
  layer3_ = register_module("layer3", ConvUnit(2 * nf, 3 * nf));
  fc_ = register_module("fc", torch::nn::Linear((config.height / 4) * (config.width / 4) * 3 * nf,
                                                config.num_classes));
}

torch::Tensor BasicCnn::forward(torch::Tensor x) {
  x = torch::max_pool2d(layer1_->forward(x), 2, 2);
  x = torch::max_pool2d(layer2_->forward(x), 2, 2);
  x = layer3_->forward(x);
  return fc_->forward(x.flatten(1));
}

}  // namespace gpulab::models
