// AlexNet layers; LibTorch's default initialisation matches PyTorch's, which
// is what torchvision's AlexNet uses.
#include "gpulab/models/alexnet.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding));
}

nn::ReLU relu() {
  return nn::ReLU(nn::ReLUOptions(/*inplace=*/true));
}

nn::MaxPool2d pool() {
  return nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2));
}

}  // namespace

AlexNet::AlexNet(const ModelConfig& config) {
  GPULAB_CHECK(config.height >= 63 && config.width >= 63, ErrorKind::kInvalidArgument,
               "alexnet needs inputs of at least 63x63 (its stride-4 stem and three max-pools), "
               "got {}x{}; resize with `image_size` (ImageNet weights expect 224x224)",
               config.height, config.width);
  const int64_t hidden = config.options.value("hidden", 4096);
  GPULAB_CHECK(hidden > 0, ErrorKind::kInvalidArgument, "alexnet: hidden must be positive, got {}",
               hidden);
  features_ = register_module(
      "features",
      nn::Sequential(conv(config.in_channels, 64, 11, 4, 2), relu(), pool(), conv(64, 192, 5, 1, 2),
                     relu(), pool(), conv(192, 384, 3, 1, 1), relu(), conv(384, 256, 3, 1, 1),
                     relu(), conv(256, 256, 3, 1, 1), relu(), pool()));
  classifier_ = register_module(
      "classifier",
      nn::Sequential(nn::Dropout(0.5), nn::Linear(256 * 6 * 6, hidden), relu(), nn::Dropout(0.5),
                     nn::Linear(hidden, hidden), relu(), nn::Linear(hidden, config.num_classes)));
}

torch::Tensor AlexNet::forward(torch::Tensor x) {
  x = torch::adaptive_avg_pool2d(features_->forward(x), {6, 6}).flatten(1);
  return classifier_->forward(x);
}

}  // namespace gpulab::models
