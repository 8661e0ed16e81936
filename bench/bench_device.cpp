// Device helpers of the benchmarks; the CUDA calls sit behind GPULAB_WITH_CUDA.
#include "bench/bench_device.h"

#include <torch/cuda.h>

#include "gpulab/core/device.h"
#include "gpulab/core/error.h"

#ifdef GPULAB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif
#ifdef GPULAB_BENCH_CUDA_GRAPHS
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
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
#ifdef GPULAB_BENCH_CUDA_GRAPHS
  return true;
#else
  return false;
#endif
}

#ifdef GPULAB_BENCH_CUDA_GRAPHS

struct StepGraph::Impl {
  explicit Impl(const c10::Device& d) : device(d) {}
  c10::Device device;
  at::cuda::CUDAGraph graph;
};

StepGraph::StepGraph(const c10::Device& device) : impl_(std::make_unique<Impl>(device)) {
  GPULAB_CHECK(device.is_cuda(), ErrorKind::kInvalidArgument,
               "a CUDA graph needs a CUDA device, got {}", device.str());
}

StepGraph::~StepGraph() = default;

void StepGraph::capture(const std::function<void()>& step, int warmup) {
  const c10::DeviceIndex index = impl_->device.index();
  const c10::cuda::CUDAStream main = c10::cuda::getCurrentCUDAStream(index);
  // Capture must not run on the default stream; the side stream first waits
  // for everything queued so far.
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, index);
  at::cuda::CUDAEvent before;
  before.record(main);
  before.block(side);
  {
    const c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < warmup; ++i) step();
    side.synchronize();
    impl_->graph.capture_begin();
    step();
    impl_->graph.capture_end();
  }
  at::cuda::CUDAEvent after;
  after.record(side);
  after.block(main);
}

void StepGraph::replay() {
  impl_->graph.replay();
}

#else

struct StepGraph::Impl {};

StepGraph::StepGraph(const c10::Device& device) {
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "CUDA graphs need a CUDA build of gpulab with GPULAB_BENCH_CUDA_GRAPHS on");
}

StepGraph::~StepGraph() = default;

void StepGraph::capture(const std::function<void()>&, int) {}

void StepGraph::replay() {}

#endif

}  // namespace gpulab::bench
