// The checkpoint and finish phases of the training loop: NaN checks,
// checkpoints every rank has passed, the output network (last or best
// validation), its final validation, the model file and summary.json.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/core/resource_monitor.h"
#include "gpulab/core/stopwatch.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/train/training_loop.h"

namespace gpulab::train::detail {
namespace fs = std::filesystem;
namespace {

void write_summary(const std::string& run_dir, const nlohmann::json& summary) {
  core::write_file_atomic((fs::path(run_dir) / "summary.json").string(), summary.dump(2) + "\n");
}

// What a run kept fresh instead of taking it from its weights file: ", new fc
// head for 6 classes", ", encoder only: decoder freshly initialised", both, or "".
std::string transfer_summary(const models::TransferPlan& plan, const std::string& arch,
                             int64_t classes) {
  const std::vector<std::string> heads = models::head_names(arch);
  std::vector<std::string> new_heads, fresh_parts;
  for (const std::string& path : plan.fresh) {
    const bool head = std::find(heads.begin(), heads.end(), path) != heads.end();
    (head ? new_heads : fresh_parts).push_back(path);
  }
  std::string summary;
  if (!new_heads.empty()) {
    summary += fmt::format(", new {} head{} for {} classes", fmt::join(new_heads, " and "),
                           new_heads.size() > 1 ? "s" : "", classes);
  }
  if (plan.encoder_only) {
    summary += fmt::format(", {} only: {} freshly initialised", models::encoder_name(arch),
                           fmt::join(fresh_parts, " and "));
  }
  return summary;
}

}  // namespace

double TrainingLoop::train_seconds() const {
  return before_.train_seconds + process_.seconds() - side_seconds_;
}

double TrainingLoop::wall_seconds() const {
  return before_.wall_seconds + process_.seconds();
}

double TrainingLoop::wait_share() const {
  // Share of this process's training time spent blocked on the data source.
  return (set_.source->wait_seconds() - wait_before_) /
         std::max(1e-9, process_.seconds() - side_seconds_);
}

void TrainingLoop::check_losses() {
  // A host sync: fails if any loss since the last check is NaN/Inf.
  if (pending_losses_.empty()) return;
  auto values = torch::stack(pending_losses_).to(torch::kCPU, torch::kFloat64);
  const double* v = values.data_ptr<double>();
  for (size_t i = 0; i < pending_losses_.size(); ++i) {
    if (std::isfinite(v[i])) continue;
    result_.iterations = pending_iterations_[i];
    result_.wall_seconds = wall_seconds();
    nlohmann::json summary = result_.to_json();
    summary["stop_reason"] = "diverged";
    if (main_rank_) write_summary(run_dir_, summary);
    const std::string last = checkpoints_.latest_weights();
    GPULAB_FAIL(ErrorKind::kRuntime,
                "training diverged: the mini-batch loss is {} at iteration {}; {}. Lower "
                "learn_rate or set gradient_threshold",
                v[i], pending_iterations_[i],
                last.empty() ? "no checkpoint was written before it"
                             : "the last good checkpoint is '" + last + "'");
  }
  pending_losses_.clear();
  pending_iterations_.clear();
}

void TrainingLoop::save_checkpoint() {
  // Rank 0 writes; the others wait at the barrier so a checkpoint is a point
  // every rank has passed.
  core::Stopwatch side;
  check_losses();
  state_.wall_seconds = wall_seconds();
  state_.train_seconds = train_seconds();
  state_.history_lines = history_.lines();
  if (main_rank_) {
    checkpoints_.save(*model_, *optimizer_, state_);
    task_.after_checkpoint({*model_, run_dir_, state_.epoch, state_.iteration});
  }
  comm_.barrier();
  side_seconds_ += side.seconds();
}

FitResult TrainingLoop::finish() {
  check_losses();
  result_.iterations = state_.iteration;
  result_.epochs_completed = std::min(state_.epoch - 1, o_.max_epochs());
  result_.minibatch = last_minibatch_;
  result_.train_seconds = train_seconds();
  result_.images_seen = state_.images_seen;
  result_.images_per_second =
      static_cast<double>(state_.images_seen) / std::max(1e-9, result_.train_seconds);
  result_.data_wait_seconds = set_.source->wait_seconds() - wait_before_;
  result_.data_wait_share = wait_share();
  result_.allreduce_wait_seconds = step_->allreduce_wait_seconds();
  result_.cuda_graphs = step_->cuda_graph_status();
  result_.cuda_graph_captures = step_->cuda_graph_captures();
  result_.cuda_graph_replays = step_->cuda_graph_replays();
  for (auto& r : reporters_) r->finish(result_);

  if (o_.output_network() == "best-validation" && has_validation_ && main_rank_ &&
      fs::exists(best_path_)) {
    models::load_state_dict(
        *model_, models::state_dict(*models::load_model_file(best_path_).network), best_path_);
  }
  // Every rank holds rank 0's network (the best one, if chosen) from here.
  {
    std::vector<at::Tensor> tensors;
    torch::NoGradGuard no_grad;
    for (auto& p : model_->parameters()) tensors.push_back(p.data());
    for (auto& b : model_->buffers()) tensors.push_back(b.data());
    if (distributed_) comm_.broadcast(tensors, 0);
  }
  if (has_validation_) result_.validation = validate();
  model_->to(torch::kCPU);
  result_.model_path = (fs::path(run_dir_) / "model.safetensors").string();
  if (main_rank_) models::save_model_file(result_.model_path, *model_, metadata_);
  result_.peak_host_memory_mb = core::peak_host_memory_mb();
  result_.peak_device_memory_mb = core::peak_device_memory_mb(device_);
  result_.wall_seconds = wall_seconds();
  // No rank leaves (and rank 0 takes the rendezvous store down) before the
  // model is written.
  comm_.barrier();
  return result_;
}

std::vector<std::string> TrainingLoop::describe(const InitialWeights& initial) const {
  std::vector<std::string> lines;
  const std::string device_name = core::describe_device(device_);
  if (distributed_) {
    const int cpu_ranks_here = device_.is_cpu() ? std::max(1, comm_.world().local_size) : 1;
    lines.push_back(
        fmt::format("Training on {}, {} each{}, execution environment '{}'{}",
                    distributed::describe_world(comm_.world(), device_.is_cuda() ? "GPU" : "CPU",
                                                comm_.backend() == "nccl" ? "NCCL" : "Gloo"),
                    device_name,
                    o_.threads() == 0 && cpu_ranks_here > 1
                        ? fmt::format(" (the node's cores shared by its {} ranks)", cpu_ranks_here)
                        : "",
                    o_.execution_environment(), precision_.describe()));
    lines.push_back(
        fmt::format("Global mini-batch {} ({} per rank), learn rate {:g}, gradients in {} buckets",
                    o_.batch_size(), o_.batch_size() / comm_.world().size, o_.learn_rate(),
                    reducer_->buckets().size()));
    if (o_.sync_batchnorm()) {
      lines.push_back(fmt::format("Batch-norm statistics over the global mini-batch in {} layers",
                                  synced_batch_norms_));
    }
  } else {
    const std::string graphs = step_->cuda_graph_status();
    lines.push_back(fmt::format("Training on {}, execution environment '{}'{}{}", device_name,
                                o_.execution_environment(), precision_.describe(),
                                !device_.is_cuda() ? ""
                                : graphs == "on"   ? ", steps replayed as CUDA graphs"
                                                   : ", CUDA graphs " + graphs));
  }
  lines.push_back(fmt::format(
      "{} training images, {} validation images, {} iterations per epoch{}", set_.source->size(),
      has_validation_ ? set_.validation->size() : 0, batches_per_epoch_,
      state_.iteration > 0 ? fmt::format(", resuming after iteration {}", state_.iteration) : ""));
  if (initial.file) {
    // The plan build_model loaded by.
    const models::TransferPlan plan =
        models::plan_transfer(*model_, config_.arch, *initial.file, initial.replace_head);
    lines.push_back(fmt::format("Initial weights: '{}' ({}){}", initial.file->path,
                                initial.file->format,
                                transfer_summary(plan, config_.arch, config_.num_classes)));
  }
  if (!plan_.frozen.empty()) {
    lines.push_back(fmt::format("Frozen: {} parameter tensors ({} ... {})", plan_.frozen.size(),
                                plan_.frozen.front(), plan_.frozen.back()));
  }
  for (const auto& g : plan_.groups) {
    if (plan_.groups.size() > 1 || g.factor != 1.0) {
      lines.push_back(fmt::format("Learn-rate factor {:g}: {} tensors ({} ...)", g.factor,
                                  g.names.size(), g.names.front()));
    }
  }
  return lines;
}

}  // namespace gpulab::train::detail
