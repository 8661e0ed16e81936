// LeNet-5 layers.
#include "gpulab/models/lenet5.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::models {

LeNet5::LeNet5(const ModelConfig& config) {
  GPULAB_CHECK(config.height >= 12 && config.width >= 12, ErrorKind::kInvalidArgument,
               "lenet5 needs inputs of at least 12x12, got {}x{}", config.height, config.width);
  conv1_ = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_channels, 6, 5).padding(2)));
  conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)));
  const int64_t h = (config.height / 2 - 4) / 2, w = (config.width / 2 - 4) / 2;
  fc1_ = register_module("fc1", torch::nn::Linear(16 * h * w, 120));
  fc2_ = register_module("fc2", torch::nn::Linear(120, 84));
  fc3_ = register_module("fc3", torch::nn::Linear(84, config.num_classes));
}

torch::Tensor LeNet5::forward(torch::Tensor x) {
  x = torch::max_pool2d(torch::relu(conv1_->forward(x)), 2, 2);
  x = torch::max_pool2d(torch::relu(conv2_->forward(x)), 2, 2);
  x = torch::relu(fc1_->forward(x.flatten(1)));
  x = torch::relu(fc2_->forward(x));
  return fc3_->forward(x);
}

}  // namespace gpulab::models
