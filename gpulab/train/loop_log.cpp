// The log phase of the training loop: the global mini-batch's metrics (with
// the stop vote in the same all-reduce), validation when due, the objective's
// best value and patience, and the reporters.
#include <torch/torch.h>

#include <cmath>

#include "gpulab/core/resource_monitor.h"
#include "gpulab/core/stopwatch.h"
#include "gpulab/models/model_file.h"
#include "gpulab/train/training_loop.h"

namespace gpulab::train::detail {

void TrainingLoop::vote_to_stop() {
  at::Tensor vote = torch::full({1}, stop_flag_ && stop_flag_->load() ? 1.0 : 0.0,
                                torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  sum_over_ranks(vote);
  if (vote.item<double>() > 0 && !stop_) {
    result_.stop_reason = "interrupted";
    stop_ = true;
  }
}

void TrainingLoop::log_row(int64_t epoch, const data::Batch& batch, const StepOutcome& step,
                           double lr, bool validate_now) {
  core::Stopwatch side;
  check_losses();
  // The global mini-batch's values, over the images decoded (fewer than
  // planned when files were skipped); the stop vote rides in the same
  // all-reduce, so the other steps' only collectives are the gradient buckets.
  auto metrics = task_.metrics(tasks::Stage::kTraining, device_);
  if (step.local_images > 0) metrics->update(step.output.detach(), batch, step.loss);
  const double vote = stop_flag_ && stop_flag_->load() ? 1.0 : 0.0;
  at::Tensor sums =
      torch::cat({metrics->sums(), torch::full({1}, vote, metrics->sums().options())});
  sum_over_ranks(sums);
  metrics->sums().copy_(sums.narrow(0, 0, sums.size(0) - 1));
  if (sums[-1].item<double>() > 0 && !stop_) {
    result_.stop_reason = "interrupted";
    stop_ = true;
  }
  LogRow row;
  row.epoch = epoch;
  row.iteration = state_.iteration;
  row.minibatch = metrics->values();
  last_minibatch_ = row.minibatch;
  row.learn_rate = lr;
  if (validate_now) {
    row.validation = validate();
    set_training_mode(*model_, true, plan_);
    track_objective(*row.validation);
  }
  side_seconds_ += side.seconds();
  const int64_t done_here = state_.iteration - before_.iteration;
  row.elapsed_seconds = wall_seconds();
  row.images_per_second = static_cast<double>(state_.images_seen) / std::max(1e-9, train_seconds());
  row.eta_seconds = process_.seconds() / static_cast<double>(done_here) *
                    static_cast<double>(total_iterations_ - state_.iteration);
  row.data_wait_share = wait_share();
  row.peak_host_memory_mb = core::peak_host_memory_mb();
  row.peak_device_memory_mb = core::peak_device_memory_mb(device_);
  for (auto& r : reporters_) r->row(row);
}

void TrainingLoop::track_objective(const tasks::MetricValues& validation) {
  const double value = tasks::find_metric(validation, objective_.metric).value();
  const double best = state_.best_objective;
  const bool improved =
      std::isfinite(value) &&
      (!std::isfinite(best) || (objective_.higher_is_better ? value > best : value < best));
  if (improved) {
    state_.best_objective = value;
    state_.best_validation = nlohmann::json::object();
    for (const auto& [name, v] : validation) {
      state_.best_validation[name] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
    }
    state_.best_iteration = state_.iteration;
    state_.validations_without_improvement = 0;
    if (o_.output_network() == "best-validation" && main_rank_) {
      models::save_model_file(best_path_, *model_, metadata_);
    }
  } else {
    ++state_.validations_without_improvement;
  }
  if (o_.validation_patience() > 0 &&
      state_.validations_without_improvement >= o_.validation_patience()) {
    result_.stop_reason = "validation-patience";
    stop_ = true;
  }
}

}  // namespace gpulab::train::detail
