// Gradient clipping, MATLAB's GradientThreshold / GradientThresholdMethod.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace gpulab::train {

// method: "l2norm" (each parameter's gradient to norm <= threshold),
// "global-l2norm" (all gradients scaled together), "absolute-value" (each
// element clamped to [-threshold, threshold]). No-op for an infinite threshold.
void clip_gradients(const std::vector<at::Tensor>& parameters, const std::string& method,
                    double threshold);

}  // namespace gpulab::train
