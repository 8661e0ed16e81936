// SGD with momentum as LibTorch's torch::optim::SGD computes it, but over
// each parameter group at once with the multi-tensor (_foreach) kernels, as
// PyTorch's Python SGD does by default on GPUs: a handful of kernel launches
// per step instead of four per parameter. Same options, state and
// serialisation as torch::optim::SGD (checkpoints are interchangeable).
#pragma once

#include <torch/optim/sgd.h>

namespace gpulab::train {

class ForeachSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;

  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace gpulab::train
