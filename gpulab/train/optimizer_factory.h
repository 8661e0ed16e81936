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

// One parameter group per entry of `groups` (e.g. ParameterPlan::groups'
// parameters), with the solver's options; set_learn_rate scales each group.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const TrainOptions& options, const std::vector<std::vector<torch::Tensor>>& groups);

// Sets the learn rate of every parameter group: learn_rate * factors[g], or
// learn_rate for all when `factors` is empty.
void set_learn_rate(torch::optim::Optimizer& optimizer, double learn_rate,
                    const std::vector<double>& factors = {});

}  // namespace gpulab::train
