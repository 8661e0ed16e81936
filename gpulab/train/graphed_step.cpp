// GraphedStep: when to capture, replay or run eagerly.
#include "gpulab/train/graphed_step.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include "gpulab/core/error.h"

namespace gpulab::train {

std::string cuda_graph_blocker(const TrainOptions& options, const c10::Device& device,
                               bool distributed) {
  if (!options.cuda_graphs()) return "--no-cuda-graphs";
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

bool GraphedStep::matches_capture(const at::Tensor& input, const at::Tensor& target) const {
  return input.sizes() == static_input_.sizes() && input.strides() == static_input_.strides() &&
         input.scalar_type() == static_input_.scalar_type() &&
         target.sizes() == static_target_.sizes() &&
         target.scalar_type() == static_target_.scalar_type();
}

bool GraphedStep::same_as_previous(const at::Tensor& input, const at::Tensor& target,
                                   double learn_rate) const {
  return input.sizes().vec() == previous_input_shape_ && target.numel() == previous_targets_ &&
         learn_rate == previous_learn_rate_;
}

StepTensors GraphedStep::run(const at::Tensor& input, const at::Tensor& target, double learn_rate) {
  const bool repeated = same_as_previous(input, target, learn_rate);
  previous_input_shape_ = input.sizes().vec();
  previous_targets_ = target.numel();
  previous_learn_rate_ = learn_rate;
  if (graph_.captured() && learn_rate != captured_learn_rate_) graph_.reset();

  if (graph_.captured() && matches_capture(input, target)) {
    static_input_.copy_(input, /*non_blocking=*/true);
    static_target_.copy_(target, /*non_blocking=*/true);
    graph_.replay();
    ++replays_;
    return static_out_;
  }

  if (!graph_.captured() && capture_error_.empty() && repeated && eager_steps_ >= warmup_) {
    // Gradients made during the capture live in the graph's memory pool;
    // each replay writes the new ones there.
    for (auto& p : parameters_) p.mutable_grad() = at::Tensor();
    static_input_ = input.clone();
    static_target_ = target.clone();
    // Autocast's cache of cast weights would hold tensors of the capture's
    // pool past it.
    const bool cache = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    try {
      graph_.capture([&] { static_out_ = step_(static_input_, static_target_); });
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
  graph_.run_eagerly([&] { out = step_(input, target); });
  ++eager_steps_;
  return out;
}

}  // namespace gpulab::train
