// Clipping without host synchronisation: scales are computed on the device.
#include "gpulab/train/gradient_clip.h"

#include <torch/torch.h>

#include <cmath>

namespace gpulab::train {

void clip_gradients(const std::vector<at::Tensor>& parameters, const std::string& method,
                    double threshold) {
  if (std::isinf(threshold)) return;
  torch::NoGradGuard no_grad;
  if (method == "global-l2norm") {
    // As torch::nn::utils::clip_grad_norm_, without its closing .item(): the
    // step stays free of host syncs and can be captured as a CUDA graph.
    std::vector<at::Tensor> norms;
    for (const auto& p : parameters) {
      if (p.grad().defined()) norms.push_back(p.grad().norm());
    }
    if (norms.empty()) return;
    auto scale = (threshold / (torch::stack(norms).norm() + 1e-6)).clamp_max(1.0);
    for (const auto& p : parameters) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
    return;
  }
  for (const auto& p : parameters) {
    auto g = p.grad();
    if (!g.defined()) continue;
    if (method == "absolute-value") {
      g.clamp_(-threshold, threshold);
    } else {  // l2norm
      auto scale = (threshold / (g.norm() + 1e-6)).clamp_max(1.0);
      g.mul_(scale);
    }
  }
}

}  // namespace gpulab::train
