// Device helpers of the benchmarks; the CUDA calls sit behind GPULAB_WITH_CUDA.
#include "bench/bench_device.h"

#include <torch/cuda.h>

#include "gpulab/core/device.h"
#include "gpulab/core/error.h"

#ifdef GPULAB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace gpulab::bench {

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  GPULAB_CHECK(name == "cuda" || name.rfind("cuda:", 0) == 0, ErrorKind::kInvalidArgument,
               "--device: expected cpu, cuda or cuda:N, got '{}'", name);
  const int gpus = core::cuda_device_count();
  GPULAB_CHECK(gpus > 0, ErrorKind::kUnavailable,
               "--device {}: LibTorch sees no GPU on this machine (a CPU-only LibTorch, or no "
               "driver); use --device cpu",
               name);
  int index = 0;
  if (name != "cuda") {
    try {
      size_t used = 0;
      index = std::stoi(name.substr(5), &used);
      GPULAB_CHECK(used == name.size() - 5, ErrorKind::kInvalidArgument, "bad index");
    } catch (const std::exception&) {
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "--device: expected cuda:N, got '{}'", name);
    }
  }
  GPULAB_CHECK(index >= 0 && index < gpus, ErrorKind::kInvalidArgument,
               "--device {}: this machine has {} GPU(s), cuda:0 to cuda:{}", name, gpus, gpus - 1);
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

void reset_peak_memory(const c10::Device& device) {
#ifdef GPULAB_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
}

int64_t peak_memory_bytes(const c10::Device& device) {
#ifdef GPULAB_WITH_CUDA
  if (device.is_cuda()) {
    // allocated_bytes[0] is the aggregate over the small and large pools.
    return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).allocated_bytes[0].peak;
  }
#endif
  return -1;
}

bool cuda_graphs_available() {
  return core::cuda_graphs_available();
}

StepGraph::StepGraph(const c10::Device& device) : graph_(device) {}

void StepGraph::capture(const std::function<void()>& step, int warmup) {
  graph_.run_eagerly([&] {
    for (int i = 0; i < warmup; ++i) step();
  });
  graph_.capture(step);
}

void StepGraph::replay() {
  graph_.replay();
}

}  // namespace gpulab::bench
