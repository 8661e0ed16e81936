// Devices for the benchmarks: --device parsing, waiting for queued GPU work,
// peak GPU memory, and a training step captured as one CUDA graph. The CUDA
// parts are compiled only in CUDA builds (GPULAB_WITH_CUDA); elsewhere they
// are no-ops or say they are unavailable.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>

#include "gpulab/core/cuda_graph.h"

namespace gpulab::bench {

// "cpu", "cuda" (= cuda:0) or "cuda:N". Throws Error(kInvalidArgument) for
// another name and Error(kUnavailable) for a GPU LibTorch does not see.
c10::Device parse_device(const std::string& name);

// Blocks until the work queued on `device` has finished; no-op on a CPU.
void synchronize(const c10::Device& device);

// Peak bytes held by LibTorch's CUDA caching allocator for tensors since the
// last reset_peak_memory(); -1 on a CPU or in a build without CUDA.
void reset_peak_memory(const c10::Device& device);
int64_t peak_memory_bytes(const c10::Device& device);

// Whether steps can be captured as CUDA graphs in this build.
bool cuda_graphs_available();

// One training step recorded as a CUDA graph and replayed as one launch.
// capture() runs `step` `warmup` times on the capture stream (so lazily
// created state such as momentum buffers and cuDNN plans exists), then
// records one call of it; replay() launches the recorded work. Everything the
// step reads or writes keeps its storage between replays: copy new inputs
// into the tensors the step captured. Throws Error(kUnavailable) in a build
// without CUDA graphs. Not thread-safe.
class StepGraph {
 public:
  explicit StepGraph(const c10::Device& device);

  void capture(const std::function<void()>& step, int warmup = 3);
  void replay();

 private:
  core::CudaGraph graph_;
};

}  // namespace gpulab::bench
