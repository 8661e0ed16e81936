// CudaGraph over at::cuda::CUDAGraph; the CUDA calls sit behind
// GPULAB_WITH_CUDA_GRAPHS.
#include "gpulab/core/cuda_graph.h"

#include "gpulab/core/compat.h"
#include "gpulab/core/error.h"

#ifdef GPULAB_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace gpulab::core {

bool cuda_graphs_available() {
#ifdef GPULAB_WITH_CUDA_GRAPHS
  return true;
#else
  return false;
#endif
}

#ifdef GPULAB_WITH_CUDA_GRAPHS

struct CudaGraph::Impl {
  Impl(const c10::Device& d)
      : device(d), side(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, d.index())) {}

  // Runs `work` on the side stream, ordered after the current stream's queued
  // work and before whatever the current stream queues next.
  template <typename Work>
  void on_side_stream(Work&& work) {
    const c10::cuda::CUDAStream main = c10::cuda::getCurrentCUDAStream(device.index());
    at::cuda::CUDAEvent before;
    before.record(main);
    before.block(side);
    {
      const c10::cuda::CUDAStreamGuard guard(side);
      work();
    }
    at::cuda::CUDAEvent after;
    after.record(side);
    after.block(main);
  }

  c10::Device device;
  // Capture may not use the legacy default stream.
  c10::cuda::CUDAStream side;
  // A fresh graph per capture: re-capturing one after reset() is not
  // supported by every LibTorch version.
  std::unique_ptr<at::cuda::CUDAGraph> graph;
};

CudaGraph::CudaGraph(const c10::Device& device) {
  GPULAB_CHECK(device.is_cuda(), ErrorKind::kInvalidArgument,
               "a CUDA graph needs a CUDA device, got {}", device.str());
  impl_ = std::make_unique<Impl>(device);
}

CudaGraph::~CudaGraph() = default;

void CudaGraph::run_eagerly(const std::function<void()>& work) {
  impl_->on_side_stream(work);
}

void CudaGraph::capture(const std::function<void()>& work) {
  impl_->graph.reset();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  impl_->on_side_stream([&] {
    // Capture must not overlap work still running on the side stream.
    impl_->side.synchronize();
    GPULAB_CAPTURE_BEGIN(*graph);
    try {
      work();
    } catch (...) {
      // End the capture so the stream is usable again; the error is the
      // work's, not the capture's.
      try {
        graph->capture_end();
      } catch (...) {
      }
      throw;
    }
    graph->capture_end();
  });
  impl_->graph = std::move(graph);
}

void CudaGraph::replay() {
  GPULAB_CHECK(impl_->graph != nullptr, ErrorKind::kInternal, "CudaGraph::replay before capture");
  impl_->on_side_stream([&] { impl_->graph->replay(); });
}

void CudaGraph::reset() {
  impl_->graph.reset();
}

bool CudaGraph::captured() const {
  return impl_->graph != nullptr;
}

#else

struct CudaGraph::Impl {};

CudaGraph::CudaGraph(const c10::Device& device) {
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "CUDA graphs need a CUDA build of gpulab with GPULAB_WITH_CUDA_GRAPHS on (asked "
              "for {})",
              device.str());
}

CudaGraph::~CudaGraph() = default;

void CudaGraph::run_eagerly(const std::function<void()>& work) {
  work();
}

void CudaGraph::capture(const std::function<void()>&) {}

void CudaGraph::replay() {}

void CudaGraph::reset() {}

bool CudaGraph::captured() const {
  return false;
}

#endif

}  // namespace gpulab::core
