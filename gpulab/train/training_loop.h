// The training loop behind Trainer::fit, in named phases, each in a file of
// its own: build (training_loop.cpp), plan epoch (epoch_plan.h), step
// (train_step.h), log (loop_log.cpp), validate (validation.h), checkpoint
// and finish (loop_finish.cpp). State the phases share is explicit here, not
// captured by lambdas.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "gpulab/core/stopwatch.h"
#include "gpulab/data/epoch_sampler.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/gradient_reducer.h"
#include "gpulab/models/model_file.h"
#include "gpulab/tasks/task.h"
#include "gpulab/train/checkpoint.h"
#include "gpulab/train/fit_result.h"
#include "gpulab/train/history_log.h"
#include "gpulab/train/parameter_groups.h"
#include "gpulab/train/reporter.h"
#include "gpulab/train/step_precision.h"
#include "gpulab/train/train_step.h"
#include "gpulab/train/trainer.h"

namespace gpulab::train::detail {

// Data-parallel steps between the ranks' votes on stopping (SIGINT/SIGTERM)
// outside the log rows: bounds how late a signal is obeyed.
//
// Host syncs of a data-parallel step (on a GPU, the CPU waits for the step's
// kernels there): the stop vote, one scalar all-reduce read back every
// kStopVotePeriod steps; with skip_bad_files, the decoded image count, read
// back every step before the forward pass (each rank must know the global
// count to weight its loss and to skip an empty step); a log row. The
// gradient buckets and synchronised batch-norm stay on the device.
constexpr int64_t kStopVotePeriod = 10;

class TrainingLoop {
 public:
  // Build phase: the network (initial weights or a resumed checkpoint), the
  // optimizer, the reducer and the reporters. Not copyable.
  TrainingLoop(tasks::Task& task, const TrainOptions& options, const std::string& run_dir,
               const nlohmann::json& spec, const InitialWeights& initial,
               distributed::Communicator* communicator, const std::atomic<bool>* stop_flag,
               const TrainingSet& set, bool resume);
  TrainingLoop(const TrainingLoop&) = delete;
  TrainingLoop& operator=(const TrainingLoop&) = delete;

  FitResult run();

 private:
  // Build.
  void build_model(const InitialWeights& initial);
  void build_optimizer();
  void restore(bool resume);
  std::vector<std::string> describe(const InitialWeights& initial) const;
  void check_objective() const;
  // One epoch: plan, then step, log, validate and checkpoint.
  void run_epoch(int64_t epoch);
  // Log phase: the global mini-batch's metrics, the stop vote, the reporters.
  void log_row(int64_t epoch, const data::Batch& batch, const StepOutcome& step, double lr,
               bool validate_now);
  void vote_to_stop();
  void track_objective(const tasks::MetricValues& validation);
  // Validate phase: the task's metrics over the validation set, summed over
  // the ranks once.
  tasks::MetricValues validate();
  // Checkpoint and finish phases.
  void check_losses();
  void save_checkpoint();
  FitResult finish();

  double train_seconds() const;
  double wall_seconds() const;
  double wait_share() const;
  // Sums a float64 tensor over the ranks in place (one all-reduce).
  void sum_over_ranks(at::Tensor& sums) const;

  // Fixed for the run.
  tasks::Task& task_;
  TrainOptions o_;  // with the world's scaling applied
  std::string run_dir_;
  nlohmann::json spec_;
  const std::atomic<bool>* stop_flag_;
  std::unique_ptr<distributed::Communicator> own_comm_;
  distributed::Communicator& comm_;
  const TrainingSet& set_;
  const bool main_rank_, distributed_;
  const c10::Device device_;
  const StepPrecision precision_;
  const bool has_validation_;
  tasks::Objective objective_;
  models::ModelConfig config_;
  std::shared_ptr<models::Network> model_;
  int synced_batch_norms_ = 0;
  ParameterPlan plan_;
  std::vector<double> lr_factors_;
  std::vector<at::Tensor> parameters_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<distributed::GradientReducer> reducer_;
  std::unique_ptr<TrainStep> step_;
  std::optional<data::ResidentBatcher> val_batcher_;
  std::optional<data::EpochSampler> sampler_;
  int64_t batches_per_epoch_ = 0;
  int64_t total_iterations_ = 0;
  models::ModelMetadata metadata_;
  std::string best_path_;

  // Where training stands.
  CheckpointStore checkpoints_;
  HistoryLog history_;
  std::vector<std::unique_ptr<Reporter>> reporters_;
  TrainerState state_;
  TrainerState before_;  // totals of earlier processes of the run
  core::Stopwatch process_;
  double side_seconds_ = 0;  // validation, logging, checkpoints
  double wait_before_ = 0;
  bool stop_ = false;
  FitResult result_;
  tasks::MetricValues last_minibatch_;
  std::vector<at::Tensor> pending_losses_;  // detached losses not yet checked for NaN/Inf
  std::vector<int64_t> pending_iterations_;
};

}  // namespace gpulab::train::detail
