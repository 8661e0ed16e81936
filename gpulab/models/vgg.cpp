// VGG layers, built from torchvision's configuration lists, and its initialisation.
#include "gpulab/models/vgg.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/sync_batch_norm.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace {

constexpr int64_t kPool = 0;  // 'M' in torchvision's cfgs

// torchvision.models.vgg.cfgs in units of the first conv's width.
std::vector<int64_t> stage_plan(int64_t depth) {
  switch (depth) {
    case 11:
      return {1, kPool, 2, kPool, 4, 4, kPool, 8, 8, kPool, 8, 8, kPool};
    case 13:
      return {1, 1, kPool, 2, 2, kPool, 4, 4, kPool, 8, 8, kPool, 8, 8, kPool};
    case 16:
      return {1, 1, kPool, 2, 2, kPool, 4, 4, 4, kPool, 8, 8, 8, kPool, 8, 8, 8, kPool};
    case 19:
      return {1, 1, kPool, 2, 2, kPool, 4, 4, 4, 4, kPool, 8, 8, 8, 8, kPool, 8, 8, 8, 8, kPool};
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument, "vgg: depth {} is not supported; valid: 11, 13, 16, 19",
              depth);
}

}  // namespace

Vgg::Vgg(const ModelConfig& config) {
  const int64_t depth = config.options.value("depth", 16);
  const bool batch_norm = config.options.value("batch_norm", false);
  const int64_t width = config.options.value("width", 64);
  const int64_t hidden = config.options.value("hidden", 4096);
  GPULAB_CHECK(width > 0 && hidden > 0, ErrorKind::kInvalidArgument,
               "vgg: width and hidden must be positive, got {} and {}", width, hidden);
  GPULAB_CHECK(config.height >= 32 && config.width >= 32, ErrorKind::kInvalidArgument,
               "vgg needs inputs of at least 32x32 (five 2x2 max-pools), got {}x{}; resize with "
               "`image_size`",
               config.height, config.width);

  features_ = nn::Sequential();
  int64_t channels = config.in_channels;
  for (int64_t units : stage_plan(depth)) {
    if (units == kPool) {
      features_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
      continue;
    }
    const int64_t out = units * width;
    features_->push_back(nn::Conv2d(nn::Conv2dOptions(channels, out, 3).padding(1)));
    if (batch_norm) features_->push_back(SyncBatchNorm2d(out));
    features_->push_back(nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
    channels = out;
  }
  register_module("features", features_);
  classifier_ = register_module(
      "classifier",
      nn::Sequential(nn::Linear(channels * 7 * 7, hidden), nn::ReLU(nn::ReLUOptions(true)),
                     nn::Dropout(0.5), nn::Linear(hidden, hidden), nn::ReLU(nn::ReLUOptions(true)),
                     nn::Dropout(0.5), nn::Linear(hidden, config.num_classes)));

  // torchvision: kaiming-normal (fan_out, relu) convs with zero bias, BN 1/0,
  // linear N(0, 0.01) with zero bias.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
      nn::init::zeros_(conv->bias);
    } else if (auto* bn = module->as<SyncBatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    } else if (auto* linear = module->as<nn::Linear>()) {
      nn::init::normal_(linear->weight, 0, 0.01);
      nn::init::zeros_(linear->bias);
    }
  }
}

torch::Tensor Vgg::forward(torch::Tensor x) {
  x = torch::adaptive_avg_pool2d(features_->forward(x), {7, 7}).flatten(1);
  return classifier_->forward(x);
}

}  // namespace gpulab::models
