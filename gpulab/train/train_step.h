// The step phase of the training loop: forward, the task's loss, backward,
// the gradient all-reduce, clipping and the optimizer step, eagerly or
// replayed as a CUDA graph, with data-parallel ranks weighting their loss by
// the images each trained on.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "gpulab/data/batch.h"
#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/gradient_reducer.h"
#include "gpulab/models/network.h"
#include "gpulab/tasks/task.h"
#include "gpulab/train/graphed_step.h"
#include "gpulab/train/step_precision.h"
#include "gpulab/train/train_options.h"

namespace gpulab::train {

// What the loop needs from a step afterwards.
struct StepOutcome {
  // The network's output for this rank's images; undefined when it had none.
  // A replayed graph overwrites it at the next step.
  at::Tensor output;
  // The loss terms, detached copies that outlive the next step (zeros when
  // this rank had no images).
  tasks::LossTerms loss;
  int64_t local_images = 0;  // this rank's images in the batch
  int64_t step_images = 0;   // images trained on over every rank
};

// The parts of the loop a step uses; not owned, they outlive the TrainStep.
struct StepParts {
  tasks::Task* task = nullptr;
  models::Network* model = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;
  std::vector<at::Tensor> parameters;               // trainable
  std::vector<double> lr_factors;                   // per parameter group
  distributed::GradientReducer* reducer = nullptr;  // data-parallel only
  distributed::Communicator* comm = nullptr;
  // The input shape of an empty batch (a rank with no images under
  // synchronised batch-norm still joins its collectives).
  std::vector<int64_t> empty_input_shape;
  int synced_batch_norms = 0;
  bool may_drop_samples = false;  // the source skips bad files
};

// Not thread-safe; one per loop.
class TrainStep {
 public:
  TrainStep(StepParts parts, const TrainOptions& options, const StepPrecision& precision,
            c10::Device device);

  // One step on this rank's `batch` of the global mini-batch of `global_n`
  // planned images, at learn rate `lr`.
  StepOutcome run(const data::Batch& batch, int64_t global_n, double lr);

  // "on", or why steps run eagerly; and the graph's counters.
  std::string cuda_graph_status() const;
  int64_t cuda_graph_captures() const { return graphed_ ? graphed_->captures() : 0; }
  int64_t cuda_graph_replays() const { return graphed_ ? graphed_->replays() : 0; }
  // Why the CUDA graph capture failed ("" if it did not).
  std::string capture_error() const { return graphed_ ? graphed_->capture_error() : ""; }
  // Seconds waited for gradient all-reduces after backward, in total.
  double allreduce_wait_seconds() const { return allreduce_wait_seconds_; }

 private:
  StepOutcome run_graphed(const data::Batch& batch, double lr);
  StepOutcome run_eagerly(const data::Batch& batch, int64_t global_n);
  // The step's two halves, shared by the eager and the graphed step.
  // loss_weight scales the loss so the average over ranks is the global
  // batch's mean loss even when the slices differ in size (1 in one process).
  StepTensors forward_backward(const data::Batch& batch, double loss_weight);
  void empty_forward_backward();
  void update();
  tasks::LossTerms zero_loss() const;

  StepParts parts_;
  const TrainOptions& options_;
  const StepPrecision& precision_;
  c10::Device device_;
  bool distributed_;
  std::string graph_blocker_;
  std::unique_ptr<GraphedStep> graphed_;
  double allreduce_wait_seconds_ = 0;
};

}  // namespace gpulab::train
