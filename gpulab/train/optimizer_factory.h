// Solvers by name: sgdm, adam, rmsprop, built from TrainOptions.
#pragma once

#include <memory>
#include <vector>

#include <torch/optim/optimizer.h>

#include "gpulab/train/train_options.h"

namespace gpulab::train {

// Throws Error(kInvalidArgument) listing the valid solvers for an unknown one.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& options,
                                                        std::vector<torch::Tensor> parameters);

// Sets the learn rate of every parameter group.
void set_learn_rate(torch::optim::Optimizer& optimizer, double learn_rate);

}  // namespace gpulab::train
