// GraphedStep: when to capture, replay or run eagerly.
#include "gpulab/train/graphed_step.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include "gpulab/core/error.h"

namespace gpulab::train {

std::string cuda_graph_blocker(const TrainOptions& options, const c10::Device& device,
                               bool distributed) {
  if (!options.cuda_graphs()) return "`cuda_graphs` is false";
  if (!device.is_cuda()) return "the step runs on a CPU";
  if (distributed) return "data-parallel steps start gradient all-reduces from autograd hooks";
  // LibTorch's Adam and RMSprop keep their step count in host memory, so a
  // replay would repeat the captured step's bias correction.
  if (options.solver() != "sgdm") {
    return fmt::format("the {} solver counts its steps on the host", options.solver());
  }
  if (!core::cuda_graphs_available()) {
    return "this build has no CUDA graphs (CMake option GPULAB_WITH_CUDA_GRAPHS)";
  }
  return "";
}

GraphedStep::GraphedStep(const c10::Device& device, std::vector<at::Tensor> parameters,
                         StepFunction step, int warmup)
    : parameters_(std::move(parameters)), step_(std::move(step)), warmup_(warmup), graph_(device) {}

namespace {

// Tasks without labels (style transfer) have no target tensor.
bool same_layout(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() != b.defined()) return false;
  return !a.defined() || (a.sizes() == b.sizes() && a.strides() == b.strides() &&
                          a.scalar_type() == b.scalar_type());
}

at::Tensor clone_defined(const at::Tensor& t) {
  return t.defined() ? t.clone() : at::Tensor();
}

int64_t target_count(const data::Batch& batch) {
  return batch.target.defined() ? batch.target.numel() : -1;
}

}  // namespace

bool GraphedStep::matches_capture(const data::Batch& batch) const {
  return same_layout(batch.input, static_batch_.input) &&
         same_layout(batch.target, static_batch_.target);
}

bool GraphedStep::same_as_previous(const data::Batch& batch, double learn_rate) const {
  return batch.input.sizes().vec() == previous_input_shape_ &&
         target_count(batch) == previous_targets_ && learn_rate == previous_learn_rate_;
}

StepTensors GraphedStep::run(const data::Batch& batch, double learn_rate) {
  const bool repeated = same_as_previous(batch, learn_rate);
  previous_input_shape_ = batch.input.sizes().vec();
  previous_targets_ = target_count(batch);
  previous_learn_rate_ = learn_rate;
  if (graph_.captured() && learn_rate != captured_learn_rate_) graph_.reset();

  if (graph_.captured() && matches_capture(batch)) {
    static_batch_.input.copy_(batch.input, /*non_blocking=*/true);
    if (batch.target.defined()) static_batch_.target.copy_(batch.target, /*non_blocking=*/true);
    graph_.replay();
    ++replays_;
    return static_out_;
  }

  if (!graph_.captured() && capture_error_.empty() && repeated && eager_steps_ >= warmup_) {
    // Gradients made during the capture live in the graph's memory pool;
    // each replay writes the new ones there.
    for (auto& p : parameters_) p.mutable_grad() = at::Tensor();
    static_batch_ = {batch.input.clone(), clone_defined(batch.target)};
    // Autocast's cache of cast weights would hold tensors of the capture's
    // pool past it.
    const bool cache = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    try {
      graph_.capture([&] { static_out_ = step_(static_batch_); });
    } catch (const std::exception& e) {
      // Nothing ran on the GPU: the step is taken eagerly below, and so are
      // the later ones.
      capture_error_ = e.what();
      static_out_ = {};
    }
    at::autocast::set_autocast_cache_enabled(cache);
    if (graph_.captured()) {
      captured_learn_rate_ = learn_rate;
      ++captures_;
      // The capture recorded the step without running it.
      graph_.replay();
      ++replays_;
      return static_out_;
    }
  }

  // Eagerly. While a capture lives its gradient tensors must stay the
  // parameters' own: zero them in place. Otherwise drop them, so backward
  // stores each new gradient instead of adding it to zeros.
  for (auto& p : parameters_) {
    if (!graph_.captured()) {
      p.mutable_grad() = at::Tensor();
    } else if (p.grad().defined()) {
      p.mutable_grad().zero_();
    }
  }
  StepTensors out;
  graph_.run_eagerly([&] { out = step_(batch); });
  ++eager_steps_;
  return out;
}

}  // namespace gpulab::train
