// Averages gradients over the ranks in buckets while backward still runs:
// parameters are grouped, in reverse order (roughly the order backward makes
// their gradients), into flat buffers of at most bucket_cap bytes; a hook
// that runs once autograd has stored a parameter's gradient copies it in and
// makes the parameter's grad a view of its bucket slot, and a full bucket
// starts its all-reduce at once, so communication overlaps the rest of
// backward (the scheme of PyTorch's DistributedDataParallel, with its
// gradient_as_bucket_view). One all-reduce per bucket, never one per
// parameter.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/distributed/communicator.h"

namespace torch::autograd {
struct Node;
}

namespace gpulab::distributed {

struct ReducerOptions {
  // Bucket capacity in MiB; the first bucket (the last layers, ready first)
  // is smaller so communication starts early.
  GPULAB_ARG(double, bucket_cap_mb) = 25;
  GPULAB_ARG(double, first_bucket_cap_mb) = 1;
};

// What one step's reduction did, for tests and benchmarks (seconds from
// prepare_for_backward()).
struct ReduceTrace {
  std::vector<double> launch_seconds;  // one per all-reduce started
  double backward_end_seconds = 0;     // when finish() was called
  double wait_seconds = 0;             // time finish() blocked on reduces
};

class GradientReducer {
 public:
  // `parameters`: the trainable tensors (all on one device and dtype). The
  // communicator must outlive the reducer. Hooks are removed on destruction.
  GradientReducer(std::vector<at::Tensor> parameters, Communicator& communicator,
                  const ReducerOptions& options = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Parameter indices per bucket, in launch order.
  const std::vector<std::vector<size_t>>& buckets() const { return bucket_params_; }

  // Before each backward: drops the parameters' gradients (while syncing,
  // the reducer writes them).
  void prepare_for_backward();
  // After backward: launches buckets whose parameters got no gradient (with
  // zeros), waits for every reduce; each parameter's grad is then its
  // averaged gradient, a view into the bucket buffer.
  void finish();

  const ReduceTrace& last_trace() const { return trace_; }

  // Off: the hooks leave gradients alone and nothing is reduced (DDP's
  // no_sync), e.g. while accumulating micro-batches or to time compute alone.
  void set_sync(bool on) { sync_ = on; }

 private:
  struct Bucket {
    at::Tensor buffer;              // flat, the parameters' dtype and device
    std::vector<at::Tensor> slots;  // views of buffer shaped like each parameter
    std::vector<bool> ready;        // per slot, this step
    size_t pending = 0;             // slots still without a gradient
    std::unique_ptr<PendingReduce> reduce;
  };
  // After autograd stored parameter `param`'s gradient.
  void on_gradient_stored(size_t param);
  void launch_ready_buckets();  // in index order, so every rank issues the same sequence
  double since_prepare() const;

  std::vector<at::Tensor> parameters_;
  Communicator& communicator_;
  std::vector<std::vector<size_t>> bucket_params_;
  std::vector<std::pair<size_t, size_t>> location_;  // parameter -> (bucket, slot)
  // Each parameter's gradient accumulator, held so it (and the hook on it)
  // outlives the graph of one step, and the hook's key.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::chrono::steady_clock::time_point step_start_;
  std::mutex mutex_;  // guards buckets_, next_launch_, trace_ against autograd threads
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  std::atomic<bool> sync_{true};
  ReduceTrace trace_;
};

}  // namespace gpulab::distributed
