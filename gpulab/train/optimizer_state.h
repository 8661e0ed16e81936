// Moving an optimizer's per-parameter state (momentum, Adam moments) to the
// parameters' device after loading it from a checkpoint (loads land on CPU).
#pragma once

#include <c10/core/Device.h>
#include <torch/optim/optimizer.h>

namespace gpulab::train {

void move_optimizer_state(torch::optim::Optimizer& optimizer, const c10::Device& device);

}  // namespace gpulab::train
