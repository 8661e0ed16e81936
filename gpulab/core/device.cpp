// Device discovery and execution-environment resolution.
#include "gpulab/core/device.h"

#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

#ifdef GPULAB_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

namespace gpulab::core {

ExecutionEnvironment parse_execution_environment(const std::string& name) {
  const std::string lower = core::to_lower(name);
  if (lower == "auto") return ExecutionEnvironment::kAuto;
  if (lower == "cpu") return ExecutionEnvironment::kCpu;
  if (lower == "gpu") return ExecutionEnvironment::kGpu;
  if (lower == "multi-gpu") return ExecutionEnvironment::kMultiGpu;
  if (lower == "parallel") return ExecutionEnvironment::kParallel;
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "unknown execution environment '{}'; valid: auto, cpu, gpu, "
              "multi-gpu, parallel",
              name);
}

std::string to_string(ExecutionEnvironment env) {
  switch (env) {
    case ExecutionEnvironment::kAuto:
      return "auto";
    case ExecutionEnvironment::kCpu:
      return "cpu";
    case ExecutionEnvironment::kGpu:
      return "gpu";
    case ExecutionEnvironment::kMultiGpu:
      return "multi-gpu";
    case ExecutionEnvironment::kParallel:
      return "parallel";
  }
  return "auto";
}

int cuda_device_count() {
  return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

c10::Device resolve_device(ExecutionEnvironment env, int local_rank) {
  switch (env) {
    case ExecutionEnvironment::kCpu:
      return c10::Device(c10::kCPU);
    case ExecutionEnvironment::kAuto:
      return cuda_device_count() > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
    case ExecutionEnvironment::kGpu:
      GPULAB_CHECK(cuda_device_count() > 0, ErrorKind::kUnavailable,
                   "`execution_environment` gpu asks for a GPU, but LibTorch sees none on this "
                   "machine (this build: CUDA {}); use `execution_environment` cpu or auto",
                   torch::cuda::is_available() ? "available" : "not available");
      return c10::Device(c10::kCUDA, 0);
    case ExecutionEnvironment::kMultiGpu:
      GPULAB_CHECK(cuda_device_count() > 0, ErrorKind::kUnavailable,
                   "`execution_environment` multi-gpu starts one rank per GPU, but LibTorch sees "
                   "no GPU on this "
                   "machine; for CPU ranks use `execution_environment` parallel under a launcher "
                   "(gpulab launch -n N, srun, mpirun)");
      [[fallthrough]];
    case ExecutionEnvironment::kParallel: {
      const int gpus = cuda_device_count();
      if (gpus == 0) return c10::Device(c10::kCPU);
      return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % gpus));
    }
  }
  return c10::Device(c10::kCPU);
}

std::string describe_device(const c10::Device& device) {
  if (device.is_cuda()) {
#ifdef GPULAB_WITH_CUDA
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device.index()) == cudaSuccess) {
      return fmt::format("{} (cuda:{}, {:.0f} GiB)", prop.name, device.index(),
                         prop.totalGlobalMem / 1073741824.0);
    }
#endif
    return fmt::format("GPU cuda:{}", device.index());
  }
  return fmt::format("CPU ({} threads)", torch::get_num_threads());
}

int resolve_threads(int requested, int local_ranks, unsigned cores) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::max(1u, cores)) / std::max(1, local_ranks));
}

int configure_threads(int threads, int local_ranks) {
  const int n = resolve_threads(threads, local_ranks, std::thread::hardware_concurrency());
  torch::set_num_threads(n);
  return n;
}

}  // namespace gpulab::core
