// ForeachSGD::step: torch::optim::SGD::step's arithmetic, one group at a time.
#include "gpulab/train/foreach_sgd.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "gpulab/core/compat.h"

namespace gpulab::train {

torch::Tensor ForeachSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
    std::vector<at::Tensor> params, grads;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      params.push_back(p.data());
      grads.push_back(p.grad().data());
    }
    if (params.empty()) continue;
    std::vector<at::Tensor> steps = options.weight_decay() != 0
                                        ? at::_foreach_add(grads, params, options.weight_decay())
                                        : grads;
    if (options.momentum() != 0) {
      // A parameter's first step starts its buffer at its step (as SGD does);
      // the others are updated together.
      std::vector<at::Tensor> buffers, buffer_steps, momentum_steps(steps.size());
      size_t i = 0;
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        const auto key = compat::optimizer_state_key(state_, p);
        auto it = state_.find(key);
        if (it == state_.end()) {
          auto state = std::make_unique<torch::optim::SGDParamState>();
          state->momentum_buffer(torch::clone(steps[i]).detach());
          momentum_steps[i] = state->momentum_buffer();
          state_[key] = std::move(state);
        } else {
          auto& buffer = static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer();
          buffers.push_back(buffer);
          buffer_steps.push_back(steps[i]);
          momentum_steps[i] = buffer;
        }
        ++i;
      }
      if (!buffers.empty()) {
        at::_foreach_mul_(buffers, options.momentum());
        at::_foreach_add_(buffers, buffer_steps, 1 - options.dampening());
      }
      if (options.nesterov()) {
        steps = at::_foreach_add(steps, momentum_steps, options.momentum());
      } else {
        steps = momentum_steps;
      }
    }
    at::_foreach_add_(params, steps, -1 * options.lr());
  }
  return loss;
}

}  // namespace gpulab::train
