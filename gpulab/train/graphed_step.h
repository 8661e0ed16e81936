// The training step on a GPU replayed as one CUDA graph: after a few eager
// steps, a step whose batch shape and learn rate equal the previous step's is
// captured once, and later steps of that shape copy their batch into the
// captured inputs and replay it (one launch instead of hundreds: small
// networks on fast GPUs are bound by kernel launches, not arithmetic).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gpulab/core/cuda_graph.h"
#include "gpulab/data/batch.h"
#include "gpulab/tasks/metrics.h"
#include "gpulab/train/train_options.h"

namespace gpulab::train {

// Why the trainer's step cannot be captured with these options on this
// device; empty when it can. Options whose step keeps state on the host (a
// step counter baked into the recorded kernels) or communicates between
// ranks are not captured.
std::string cuda_graph_blocker(const TrainOptions& options, const c10::Device& device,
                               bool distributed);

struct StepTensors {
  at::Tensor output;      // the network's output
  tasks::LossTerms loss;  // the mini-batch loss (scalars)
};

// forward, loss, backward, clipping and the optimizer step on a batch; must
// not synchronise with the host (no .item()).
using StepFunction = std::function<StepTensors(const data::Batch& batch)>;

class GraphedStep {
 public:
  // `parameters`: those the step gives gradients. `warmup`: eager steps
  // before the first capture (they create momentum buffers, cuDNN plans and
  // cuBLAS workspaces on the capture stream). Throws Error(kUnavailable) in
  // a build without CUDA graphs.
  GraphedStep(const c10::Device& device, std::vector<at::Tensor> parameters, StepFunction step,
              int warmup = 3);

  // One training step. The learn rate is recorded in a captured graph (the
  // optimizer reads it on the host): a new one drops the capture, and steps
  // run eagerly until it holds for two steps. The tensors returned by a
  // replay are overwritten by the next step: copy what must outlive it.
  StepTensors run(const data::Batch& batch, double learn_rate);

  int64_t captures() const { return captures_; }
  int64_t replays() const { return replays_; }
  int64_t eager_steps() const { return eager_steps_; }
  // Why a capture failed (the steps then all run eagerly); empty if none did.
  const std::string& capture_error() const { return capture_error_; }

 private:
  bool matches_capture(const data::Batch& batch) const;
  bool same_as_previous(const data::Batch& batch, double learn_rate) const;

  std::vector<at::Tensor> parameters_;
  StepFunction step_;
  int warmup_;
  core::CudaGraph graph_;
  data::Batch static_batch_;
  StepTensors static_out_;
  double captured_learn_rate_ = 0;
  // The previous step's batch shape and learn rate.
  std::vector<int64_t> previous_input_shape_;
  int64_t previous_targets_ = -1;
  double previous_learn_rate_ = -1;
  int64_t captures_ = 0, replays_ = 0, eager_steps_ = 0;
  std::string capture_error_;
};

}  // namespace gpulab::train
