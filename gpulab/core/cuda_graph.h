// A piece of GPU work recorded once as a CUDA graph and replayed as one
// launch, with the side stream it is captured on. The CUDA calls are compiled
// only in CUDA builds with GPULAB_WITH_CUDA_GRAPHS; elsewhere constructing one
// throws Error(kUnavailable) and cuda_graphs_available() says false.
#pragma once

#include <c10/core/Device.h>

#include <functional>
#include <memory>

namespace gpulab::core {

// Whether this build can capture CUDA graphs (a CUDA LibTorch and the CMake
// option GPULAB_WITH_CUDA_GRAPHS).
bool cuda_graphs_available();

// Everything a captured graph reads or writes keeps its storage between
// replays: copy new inputs into the tensors the captured work used. Work
// queued on the current stream before run_eagerly()/capture()/replay() is
// finished before theirs starts, and work queued after them waits for theirs.
// Not thread-safe.
class CudaGraph {
 public:
  explicit CudaGraph(const c10::Device& device);
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Runs `work` on the capture stream, not recorded: the warm-up that
  // creates lazily made state (optimizer buffers, cuDNN plans, cuBLAS
  // workspaces) on the stream the capture will use.
  void run_eagerly(const std::function<void()>& work);
  // Records one call of `work` (executing nothing on the GPU) in a new
  // graph, replacing a previous capture.
  void capture(const std::function<void()>& work);
  // Launches the recorded work on the capture stream.
  void replay();
  // Drops the recorded graph and its memory pool; tensors made during the
  // capture stay valid.
  void reset();
  bool captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpulab::core
