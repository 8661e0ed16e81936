// Reading peak memory from /proc and from the CUDA caching allocator.
#include "gpulab/core/resource_monitor.h"

#include <fstream>
#include <string>

#ifdef GPULAB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace gpulab::core {

double peak_host_memory_mb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
    status.ignore(1 << 16, '\n');
  }
  return 0;
}

std::optional<double> peak_device_memory_mb(const c10::Device& device) {
#ifdef GPULAB_WITH_CUDA
  if (!device.is_cuda()) return std::nullopt;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
  // Index 0 is StatType::AGGREGATE (every pool), whose namespace differs
  // between LibTorch 1.13 and 2.x; its value does not.
  const auto& bytes = stats.allocated_bytes[0];
  return static_cast<double>(bytes.peak) / (1024.0 * 1024.0);
#else
  (void)device;
  return std::nullopt;
#endif
}

}  // namespace gpulab::core
