// Peak memory of this process: host resident set and, on a CUDA device, the
// caching allocator's peak. Users size batches from these (seed 003's tables
// of what fits at each batch size), so runs record them.
#pragma once

#include <c10/core/Device.h>

#include <optional>

namespace gpulab::core {

// Peak resident set size of this process so far (VmHWM), in MiB; 0 when the
// system does not say (non-Linux).
double peak_host_memory_mb();

// Peak bytes the CUDA caching allocator has handed out on `device` since the
// process started (or the last reset), in MiB; nullopt for a CPU device or a
// build without CUDA.
std::optional<double> peak_device_memory_mb(const c10::Device& device);

}  // namespace gpulab::core
