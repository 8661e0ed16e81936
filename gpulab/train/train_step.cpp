// The training step, eager or graphed.
#include "gpulab/train/train_step.h"

#include <torch/torch.h>

#include <cmath>

#include "gpulab/train/gradient_clip.h"
#include "gpulab/train/optimizer_factory.h"

namespace gpulab::train {
namespace {

tasks::LossTerms detached_copy(const tasks::LossTerms& loss) {
  tasks::LossTerms out{loss.total.detach().clone(), {}};
  for (const auto& [name, part] : loss.parts) out.parts.emplace_back(name, part.detach().clone());
  return out;
}

}  // namespace

TrainStep::TrainStep(StepParts parts, const TrainOptions& options, const StepPrecision& precision,
                     c10::Device device)
    : parts_(std::move(parts)),
      options_(options),
      precision_(precision),
      device_(device),
      distributed_(parts_.comm->world().is_distributed()),
      graph_blocker_(cuda_graph_blocker(options, device, distributed_)) {
  // One process on a GPU: the step is replayed as a CUDA graph once it repeats.
  if (graph_blocker_.empty()) {
    graphed_ =
        std::make_unique<GraphedStep>(device, parts_.parameters, [this](const data::Batch& batch) {
          StepTensors out = forward_backward(batch, 1.0);
          update();
          return out;
        });
  }
}

StepTensors TrainStep::forward_backward(const data::Batch& batch, double loss_weight) {
  StepTensors out;
  {
    auto autocast = precision_.autocast();
    out.output = parts_.model->forward(precision_.prepare(batch.input));
    out.loss = parts_.task->loss(out.output.to(torch::kFloat32), batch);
  }
  (loss_weight != 1.0 ? out.loss.total * loss_weight : out.loss.total).backward();
  return out;
}

void TrainStep::empty_forward_backward() {
  const at::Tensor empty =
      torch::zeros(parts_.empty_input_shape, torch::TensorOptions().device(device_));
  at::Tensor output;
  {
    auto autocast = precision_.autocast();
    output = parts_.model->forward(precision_.prepare(empty));
  }
  // The sum of no outputs: every gradient it gives is a sum over no images.
  output.to(torch::kFloat32).sum().backward();
}

void TrainStep::update() {
  if (parts_.reducer) {
    parts_.reducer->finish();
    allreduce_wait_seconds_ += parts_.reducer->last_trace().wait_seconds;
  }
  clip_gradients(parts_.parameters, options_.gradient_threshold_method(),
                 options_.gradient_threshold());
  parts_.optimizer->step();
}

tasks::LossTerms TrainStep::zero_loss() const {
  return {torch::zeros({}, torch::TensorOptions().device(device_)), {}};
}

StepOutcome TrainStep::run(const data::Batch& batch, int64_t global_n, double lr) {
  set_learn_rate(*parts_.optimizer, lr, parts_.lr_factors);
  return graphed_ ? run_graphed(batch, lr) : run_eagerly(batch, global_n);
}

StepOutcome TrainStep::run_graphed(const data::Batch& batch, double lr) {
  StepOutcome out;
  out.local_images = batch.size();
  out.step_images = out.local_images;
  if (out.local_images == 0) {
    // Every file of the batch was skipped: no gradient, no update.
    out.loss = zero_loss();
    return out;
  }
  const StepTensors step = graphed_->run(batch, lr);
  out.output = step.output;
  // A replay overwrites its loss tensors at the next step.
  out.loss = detached_copy(step.loss);
  return out;
}

StepOutcome TrainStep::run_eagerly(const data::Batch& batch, int64_t global_n) {
  StepOutcome out;
  out.local_images = batch.size();
  // Drop the gradients instead of zero-filling them: backward then stores
  // each new gradient rather than adding it to zeros (PyTorch 2.x's
  // default). Same result; ~1.2x faster CPU step (docs/benchmarks.md).
  for (auto& p : parts_.parameters) p.mutable_grad() = at::Tensor();
  // Files skipped on some ranks: weight each rank's loss by the global batch
  // actually decoded, and skip a step no rank has an image for, as one
  // process does. One small all-reduce, only when files may be skipped.
  int64_t decoded_n = distributed_ ? global_n : out.local_images;
  if (distributed_ && parts_.may_drop_samples) {
    std::vector<at::Tensor> count = {
        torch::full({1}, static_cast<double>(out.local_images), torch::kFloat64)
            .to(parts_.comm->backend() == "nccl" ? device_ : c10::Device(c10::kCPU))};
    parts_.comm->all_reduce_sum(count);
    decoded_n = std::llround(count[0].cpu().item<double>());
  }
  out.step_images = decoded_n;
  out.loss = zero_loss();
  if (decoded_n == 0) return out;
  if (parts_.reducer) parts_.reducer->prepare_for_backward();
  if (out.local_images > 0) {
    const double weight = distributed_
                              ? static_cast<double>(out.local_images) * parts_.comm->world().size /
                                    static_cast<double>(decoded_n)
                              : 1.0;
    const StepTensors step = forward_backward(batch, weight);
    out.output = step.output;
    out.loss = step.loss;
  } else if (parts_.synced_batch_norms > 0) {
    // Synchronised batch-norm layers all-reduce in forward and backward: a
    // rank with no images still runs both, on an empty batch that adds
    // nothing to the statistics or the gradients.
    empty_forward_backward();
  }
  update();
  return out;
}

std::string TrainStep::cuda_graph_status() const {
  if (!graphed_) return "off: " + graph_blocker_;
  if (!graphed_->capture_error().empty()) {
    return "capture failed, steps ran eagerly: " + graphed_->capture_error();
  }
  return "on";
}

}  // namespace gpulab::train
