// Per-solver state types of LibTorch's SGD, Adam and RMSprop.
#include "gpulab/train/optimizer_state.h"

#include <torch/torch.h>

namespace gpulab::train {
namespace {

at::Tensor moved(const at::Tensor& t, const c10::Device& device) {
  return t.defined() ? t.to(device) : t;
}

}  // namespace

void move_optimizer_state(torch::optim::Optimizer& optimizer, const c10::Device& device) {
  for (auto& kv : optimizer.state()) {
    auto* state = kv.second.get();
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      sgd->momentum_buffer(moved(sgd->momentum_buffer(), device));
    } else if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(state)) {
      adam->exp_avg(moved(adam->exp_avg(), device));
      adam->exp_avg_sq(moved(adam->exp_avg_sq(), device));
      adam->max_exp_avg_sq(moved(adam->max_exp_avg_sq(), device));
    } else if (auto* rms = dynamic_cast<torch::optim::RMSpropParamState*>(state)) {
      rms->square_avg(moved(rms->square_avg(), device));
      rms->momentum_buffer(moved(rms->momentum_buffer(), device));
      rms->grad_avg(moved(rms->grad_avg(), device));
    }
  }
}

}  // namespace gpulab::train
