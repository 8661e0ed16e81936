// The build phase of the training loop and the epoch loop that drives the
// other phases.
#include "gpulab/train/training_loop.h"

#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/core/seed.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/sync_batch_norm.h"
#include "gpulab/train/epoch_plan.h"
#include "gpulab/train/lr_schedule.h"
#include "gpulab/train/optimizer_factory.h"
#include "gpulab/train/optimizer_state.h"
#include "gpulab/train/run_checks.h"

namespace gpulab::train::detail {
namespace fs = std::filesystem;
namespace {

distributed::Communicator& communicator_or(std::unique_ptr<distributed::Communicator>& own,
                                           distributed::Communicator* given) {
  if (given != nullptr) return *given;
  own = distributed::single_process_communicator();
  return *own;
}

// The options as this world runs them: --scale-with-workers multiplies the
// batch and the learn rate by the number of ranks.
TrainOptions scaled_for_world(TrainOptions o, int world_size) {
  if (o.scale_with_workers()) {
    o.batch_size(o.batch_size() * world_size);
    o.learn_rate(o.learn_rate() * world_size);
  }
  GPULAB_CHECK(o.batch_size() >= world_size, ErrorKind::kInvalidArgument,
               "the mini-batch of {} images is split over {} ranks: give each rank at least one "
               "(batch_size >= {}, or scale_with_workers)",
               o.batch_size(), world_size, world_size);
  return o;
}

std::vector<LearnRateFactor> learn_rate_rules(const TrainOptions& o) {
  std::vector<LearnRateFactor> rules;
  for (const auto& pattern : o.freeze()) rules.push_back({pattern, 0.0});
  for (const auto& text : o.learn_rate_factors()) rules.push_back(parse_learn_rate_factor(text));
  return rules;
}

// Every parameter and buffer from rank 0, so all ranks hold the same network.
void broadcast_state(models::Network& model, distributed::Communicator& comm, bool buffers_only) {
  if (!comm.world().is_distributed()) return;
  std::vector<at::Tensor> tensors;
  torch::NoGradGuard no_grad;
  if (!buffers_only) {
    for (auto& p : model.parameters()) tensors.push_back(p.data());
  }
  for (auto& b : model.buffers()) tensors.push_back(b.data());
  comm.broadcast(tensors, 0);
}

}  // namespace

TrainingLoop::TrainingLoop(tasks::Task& task, const TrainOptions& options,
                           const std::string& run_dir, const nlohmann::json& spec,
                           const InitialWeights& initial, distributed::Communicator* communicator,
                           const std::atomic<bool>* stop_flag, const TrainingSet& set, bool resume)
    : task_(task),
      o_(options),
      run_dir_(run_dir),
      spec_(spec),
      stop_flag_(stop_flag),
      comm_(communicator_or(own_comm_, communicator)),
      set_(set),
      main_rank_(comm_.world().is_main()),
      distributed_(comm_.world().is_distributed()),
      device_(core::resolve_device(core::parse_execution_environment(o_.execution_environment()),
                                   comm_.world().local_rank)),
      precision_(device_, o_),
      has_validation_(set.validation != nullptr && set.validation->size() > 0),
      checkpoints_((fs::path(run_dir) / "checkpoints").string(), o_.checkpoints_kept(),
                   /*writer=*/main_rank_),
      history_((fs::path(run_dir) / "history.jsonl").string()) {
  GPULAB_CHECK(set.source != nullptr, ErrorKind::kInvalidArgument, "no batch source given");
  o_ = scaled_for_world(o_, comm_.world().size);
  // CPU ranks on one node share its cores unless threads says otherwise.
  const int cpu_ranks_here =
      distributed_ && device_.is_cpu() ? std::max(1, comm_.world().local_size) : 1;
  core::configure_threads(o_.threads(), cpu_ranks_here);
  if (device_.is_cuda()) at::globalContext().setBenchmarkCuDNN(o_.cudnn_benchmark());
  objective_ = o_.objective_metric().empty()
                   ? task_.default_objective()
                   : tasks::Objective{o_.objective_metric(),
                                      o_.objective_metric().find("loss") == std::string::npos};
  check_objective();
  build_model(initial);
  build_optimizer();
  restore(resume);
  if (main_rank_) {
    if (o_.verbose()) {
      reporters_.push_back(std::make_unique<ProgressTableReporter>(task_.progress_columns()));
    }
    reporters_.push_back(std::make_unique<HistoryReporter>(history_));
    for (auto& r : reporters_) r->start(describe(initial));
  }
}

void TrainingLoop::check_objective() const {
  const tasks::MetricValues names = task_.metrics(tasks::Stage::kValidation, c10::kCPU)->values();
  std::vector<std::string> valid;
  for (const auto& [name, value] : names) valid.push_back(name);
  GPULAB_CHECK(tasks::find_metric(names, objective_.metric).has_value(),
               ErrorKind::kInvalidArgument,
               "objective_metric '{}' is not a validation metric of task '{}'; valid: {}",
               objective_.metric, task_.name(), fmt::join(valid, ", "));
}

void TrainingLoop::build_model(const InitialWeights& initial) {
  // Built from the seed so a fresh run is reproducible.
  core::seed_everything(o_.seed());
  config_ = task_.model_config(set_.shape);
  model_ = models::create_model(config_);
  if (initial.file) {
    models::load_weights_for_transfer(*model_, config_.arch, *initial.file, initial.replace_head);
  }
  model_->to(device_);
  precision_.prepare_model(*model_);
  task_.setup({device_, set_.shape, set_.normalization});
  if (distributed_) {
    check_same_configuration(
        comm_, config_, *model_, o_,
        {set_.source->size(), set_.shape.labels.size(),
         has_validation_ ? set_.validation->size() : 0, set_.source->may_drop_samples()});
  }
  if (distributed_ && o_.sync_batchnorm()) {
    synced_batch_norms_ = models::set_batch_norm_all_reduce(*model_, [this](at::Tensor& t) {
      std::vector<at::Tensor> one{t};
      comm_.all_reduce_sum(one);
    });
  }
  metadata_.config = config_;
  metadata_.task = task_.name();
  metadata_.output = task_.output_kind();
  metadata_.labels = set_.shape.labels.to_json();
  metadata_.fixed_input_size = task_.fixed_input_size(config_);
  metadata_.task_metadata = task_.metadata();
  metadata_.mean = set_.normalization.mean;
  metadata_.std = set_.normalization.std;
  metadata_.training = spec_;
  best_path_ = (fs::path(run_dir_) / "checkpoints" / "best.safetensors").string();
}

void TrainingLoop::build_optimizer() {
  plan_ = plan_parameters(*model_, learn_rate_rules(o_));
  lr_factors_ = plan_.factors();
  parameters_ = plan_.trainable();
  std::vector<std::vector<at::Tensor>> groups;
  for (const auto& g : plan_.groups) groups.push_back(g.parameters);
  optimizer_ = make_optimizer(o_, groups);
  set_training_mode(*model_, true, plan_);
}

void TrainingLoop::restore(bool resume) {
  state_.batch_size = o_.batch_size();
  // A run killed before its first checkpoint resumes from the beginning.
  // Every rank reads the same checkpoint (RUN_DIR is shared), so a run may
  // resume with another world size: the position is in global mini-batches.
  if (resume && checkpoints_.has_latest()) {
    state_ = checkpoints_.load_latest(*model_, *optimizer_);
    rebase_to_batch_size(state_, o_.batch_size());
    move_optimizer_state(*optimizer_, device_);
    if (main_rank_) history_.truncate_to(state_.history_lines);
  } else if (main_rank_) {
    history_.truncate_to(0);
  }
  broadcast_state(*model_, comm_, /*buffers_only=*/false);
  if (distributed_) {
    reducer_ = std::make_unique<distributed::GradientReducer>(
        parameters_, comm_,
        distributed::ReducerOptions()
            .bucket_cap_mb(o_.bucket_cap_mb())
            .first_bucket_cap_mb(o_.first_bucket_cap_mb()));
  }
  StepParts parts;
  parts.task = &task_;
  parts.model = model_.get();
  parts.optimizer = optimizer_.get();
  parts.parameters = parameters_;
  parts.lr_factors = lr_factors_;
  parts.reducer = reducer_.get();
  parts.comm = &comm_;
  parts.empty_input_shape = {0, set_.shape.channels, set_.shape.height, set_.shape.width};
  parts.synced_batch_norms = synced_batch_norms_;
  parts.may_drop_samples = set_.source->may_drop_samples();
  step_ = std::make_unique<TrainStep>(std::move(parts), o_, precision_, device_);
  before_ = state_;
  if (has_validation_) {
    val_batcher_.emplace(*set_.validation, set_.normalization, device_, precision_.channels_last());
  }
  wait_before_ = set_.source->wait_seconds();
  sampler_.emplace(set_.source->size(), data::parse_shuffle_mode(o_.shuffle()), o_.seed());
  batches_per_epoch_ = sampler_->batches_per_epoch(o_.batch_size());
  total_iterations_ = batches_per_epoch_ * o_.max_epochs();
}

FitResult TrainingLoop::run() {
  result_.task = task_.name();
  result_.device = core::describe_device(device_);
  result_.world_size = comm_.world().size;
  result_.dist_backend = comm_.backend();
  result_.stop_reason = "max-epochs";
  result_.primary_metric = task_.primary_metric();
  result_.objective_metric = objective_.metric;
  for (int64_t epoch = state_.epoch; epoch <= o_.max_epochs() && !stop_; ++epoch) {
    run_epoch(epoch);
  }
  return finish();
}

void TrainingLoop::run_epoch(int64_t epoch) {
  // The epoch's remaining steps go to the source at once so a streaming
  // loader can prepare them ahead (and a distributed run can shard them).
  // state_.batch_in_epoch moves on inside the step loop: keep where it began.
  const int64_t first_batch = state_.batch_in_epoch;
  EpochPlan plan =
      plan_epoch(sampler_->order(epoch), set_.source->size(), o_.batch_size(), first_batch,
                 batches_per_epoch_, comm_.world().rank, comm_.world().size);
  const std::vector<int64_t> global_sizes = plan.global_sizes;
  set_.source->start_epoch(epoch, std::move(plan.steps));
  for (int64_t b = first_batch; b < batches_per_epoch_ && !stop_; ++b) {
    const data::Batch batch = set_.source->next();
    const double lr =
        learn_rate_at(o_, static_cast<double>(epoch - 1) +
                              static_cast<double>(b) / static_cast<double>(batches_per_epoch_));
    const StepOutcome step = step_->run(batch, global_sizes[b - first_batch], lr);

    ++state_.iteration;
    state_.images_seen += step.step_images;
    const bool last_of_epoch = b + 1 == batches_per_epoch_;
    state_.epoch = last_of_epoch ? epoch + 1 : epoch;
    state_.batch_in_epoch = last_of_epoch ? 0 : b + 1;
    pending_losses_.push_back(step.loss.total);
    pending_iterations_.push_back(state_.iteration);
    if (device_.is_cpu()) check_losses();  // free on CPU: NaN is reported at once

    const bool last_of_run = last_of_epoch && epoch == o_.max_epochs();
    const bool validate_now =
        has_validation_ && (state_.iteration % o_.validation_frequency() == 0 || last_of_run);
    const bool log_now = state_.iteration == 1 || state_.iteration % o_.verbose_frequency() == 0 ||
                         last_of_epoch || validate_now;
    if (log_now) {
      log_row(epoch, batch, step, lr, validate_now);
    } else if (!distributed_ || state_.iteration % kStopVotePeriod == 0) {
      vote_to_stop();
    }
    if (stop_ && !log_now) log_row(epoch, batch, step, lr, /*validate_now=*/false);
    const bool by_iteration = o_.checkpoint_frequency_unit() == "iteration";
    const bool checkpoint_now =
        stop_ || last_of_run ||
        (by_iteration && state_.iteration % o_.checkpoint_frequency() == 0) ||
        (!by_iteration && last_of_epoch && epoch % o_.checkpoint_frequency() == 0);
    if (checkpoint_now) save_checkpoint();
  }
}

}  // namespace gpulab::train::detail
