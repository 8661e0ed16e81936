// TorchScript archives as Python writes them (torch.jit.script + save): the
// code of each module, no gpulab.json.
#pragma once

#include <cstdint>
#include <string>

namespace gpulab::testing {

// Writes a small scripted CNN taking [N, channels, H, W] (any H, W >= 1):
// "conv" (3x3, 4 filters, padding 1) -> "bn" (a BatchNorm2d, type name as
// torch.nn's, running statistics updated in training mode) -> ReLU -> mean
// over H, W -> "fc" (4 -> classes). Weights are seeded random.
void write_scripted_cnn(const std::string& path, int64_t channels, int64_t classes);

}  // namespace gpulab::testing
