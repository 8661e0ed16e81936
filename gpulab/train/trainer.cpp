// Trainer::fit: the loop, validation, logging and checkpointing.
#include "gpulab/train/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/core/seed.h"
#include "gpulab/core/stopwatch.h"
#include "gpulab/data/epoch_sampler.h"
#include "gpulab/data/resident_batch_source.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/train/checkpoint.h"
#include "gpulab/train/gradient_clip.h"
#include "gpulab/train/history_log.h"
#include "gpulab/train/lr_schedule.h"
#include "gpulab/train/optimizer_factory.h"
#include "gpulab/train/optimizer_state.h"
#include "gpulab/train/parameter_groups.h"
#include "gpulab/train/progress_table.h"
#include "gpulab/train/step_precision.h"

namespace gpulab::train {
namespace fs = std::filesystem;
namespace {

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
};

Evaluation evaluate(models::Network& model, const Task& task, const data::ResidentBatcher& batcher,
                    int64_t batch_size, const StepPrecision& precision) {
  torch::NoGradGuard no_grad;
  model.eval();
  auto loss_sum =
      torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(batcher.device()));
  auto correct =
      torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(batcher.device()));
  int64_t predictions = 0;
  for (int64_t b = 0; b < batcher.size(); b += batch_size) {
    auto batch = batcher.range(b, std::min(batcher.size(), b + batch_size));
    auto guard = precision.autocast();
    auto out = model.forward(precision.prepare(batch.input)).to(torch::kFloat32);
    loss_sum += task.loss(out, batch.target).to(torch::kFloat64) * batch.target.size(0);
    correct += task.correct(out, batch.target);
    predictions += task.predictions(batch.target);
  }
  const double n = static_cast<double>(batcher.size());
  return {loss_sum.item<double>() / n,
          static_cast<double>(correct.item<int64_t>()) / static_cast<double>(predictions)};
}

std::vector<LearnRateFactor> learn_rate_rules(const TrainOptions& o) {
  std::vector<LearnRateFactor> rules;
  for (const auto& pattern : o.freeze()) rules.push_back({pattern, 0.0});
  for (const auto& text : o.learn_rate_factors()) rules.push_back(parse_learn_rate_factor(text));
  return rules;
}

std::string describe_transfer(const InitialWeights& initial, const models::ModelConfig& config,
                              const ParameterPlan& plan) {
  std::string out;
  if (initial.file) {
    out += fmt::format("Initial weights: '{}' ({}){}\n", initial.file->path, initial.file->format,
                       initial.replace_head
                           ? fmt::format(", new {} head for {} classes",
                                         models::head_name(config.arch), config.num_classes)
                           : std::string());
  }
  if (!plan.frozen.empty()) {
    out += fmt::format("Frozen: {} parameter tensors ({} ... {})\n", plan.frozen.size(),
                       plan.frozen.front(), plan.frozen.back());
  }
  for (const auto& g : plan.groups) {
    if (plan.groups.size() > 1 || g.factor != 1.0) {
      out += fmt::format("Learn-rate factor {:g}: {} tensors ({} ...)\n", g.factor, g.names.size(),
                         g.names.front());
    }
  }
  return out;
}

void write_summary(const std::string& run_dir, const nlohmann::json& summary) {
  core::write_file_atomic((fs::path(run_dir) / "summary.json").string(), summary.dump(2) + "\n");
}

}  // namespace

nlohmann::json FitResult::to_json() const {
  auto opt = [](const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json();
  };
  return {{"stop_reason", stop_reason},
          {"epochs_completed", epochs_completed},
          {"iterations", iterations},
          {"final_minibatch_loss", minibatch_loss},
          {"final_minibatch_accuracy", minibatch_accuracy},
          {"validation_loss", opt(validation_loss)},
          {"validation_accuracy", opt(validation_accuracy)},
          {"wall_seconds", wall_seconds},
          {"train_seconds", train_seconds},
          {"images_per_second", images_per_second},
          {"data_wait_seconds", data_wait_seconds},
          {"data_wait_share", data_wait_share},
          {"device", device},
          {"model", model_path}};
}

Trainer::Trainer(const Task& task, TrainOptions options, std::string run_dir, nlohmann::json spec)
    : task_(task),
      options_(std::move(options)),
      run_dir_(std::move(run_dir)),
      spec_(std::move(spec)) {
  options_.validate();
}

FitResult Trainer::fit(const data::Dataset& train, const data::Dataset* validation, bool resume) {
  const c10::Device device =
      core::resolve_device(core::parse_execution_environment(options_.execution_environment()));
  const data::Normalization norm =
      initial_.normalization ? *initial_.normalization : data::compute_normalization(train);
  GPULAB_CHECK(static_cast<int64_t>(norm.mean.size()) == train.channels(),
               ErrorKind::kInvalidArgument,
               "the initial weights expect {}-channel images but the training data has {}; "
               "convert the images (--channels {})",
               norm.mean.size(), train.channels(), norm.mean.size());
  const data::ResidentBatcher batcher(train, norm, device,
                                      StepPrecision(device, options_).channels_last());
  data::ResidentBatchSource source(batcher);
  return fit_source(source, train, norm, validation, resume);
}

FitResult Trainer::fit(const StreamingTrainSet& train, const data::Dataset* validation,
                       bool resume) {
  GPULAB_CHECK(train.source != nullptr, ErrorKind::kInvalidArgument, "no batch source given");
  // The model only needs the set's classes and image size: a set of no rows.
  data::Dataset shape;
  shape.images = torch::empty({0, train.channels, train.height, train.width}, torch::kUInt8);
  shape.labels = torch::empty({0}, torch::kInt64);
  shape.class_names = train.class_names;
  return fit_source(*train.source, shape, train.normalization, validation, resume);
}

FitResult Trainer::fit_source(data::BatchSource& source, const data::Dataset& train,
                              const data::Normalization& norm, const data::Dataset* validation,
                              bool resume) {
  const TrainOptions& o = options_;
  core::Stopwatch process;  // this process's wall time
  double side_seconds = 0;  // of which validation, logging, checkpoints
  core::configure_threads(o.threads());
  const c10::Device device =
      core::resolve_device(core::parse_execution_environment(o.execution_environment()));
  const StepPrecision precision(device, o);
  const bool has_validation = validation != nullptr && validation->size() > 0;

  // Model and optimizer: built from the seed so a fresh run is reproducible.
  core::seed_everything(o.seed());
  const models::ModelConfig config = task_.model_config(train);
  auto model = models::create_model(config);
  if (initial_.file) {
    models::load_weights_for_transfer(*model, config.arch, *initial_.file, initial_.replace_head);
  }
  model->to(device);
  precision.prepare_model(*model);
  const ParameterPlan plan = plan_parameters(*model, learn_rate_rules(o));
  const std::vector<double> lr_factors = plan.factors();
  const std::vector<at::Tensor> parameters = plan.trainable();
  std::vector<std::vector<at::Tensor>> groups;
  for (const auto& g : plan.groups) groups.push_back(g.parameters);
  auto optimizer = make_optimizer(o, groups);
  set_training_mode(*model, true, plan);

  CheckpointStore checkpoints((fs::path(run_dir_) / "checkpoints").string(), o.checkpoints_kept());
  HistoryLog history((fs::path(run_dir_) / "history.jsonl").string());
  TrainerState state;
  // A run killed before its first checkpoint resumes from the beginning.
  if (resume && checkpoints.has_latest()) {
    state = checkpoints.load_latest(*model, *optimizer);
    move_optimizer_state(*optimizer, device);
    history.truncate_to(state.history_lines);
  } else {
    history.truncate_to(0);
  }
  const TrainerState before = state;  // totals of earlier processes

  std::optional<data::ResidentBatcher> val_batcher;
  if (has_validation) val_batcher.emplace(*validation, norm, device, precision.channels_last());
  const double wait_before = source.wait_seconds();
  const data::EpochSampler sampler(source.size(), data::parse_shuffle_mode(o.shuffle()), o.seed());
  const int64_t batches_per_epoch = sampler.batches_per_epoch(o.batch_size());
  const int64_t total_iterations = batches_per_epoch * o.max_epochs();
  const int64_t eval_batch = std::max<int64_t>(o.batch_size(), 256);
  const std::string device_name = core::describe_device(device);
  const std::string best_path = (fs::path(run_dir_) / "checkpoints" / "best.safetensors").string();
  const bool checkpoint_by_iteration = o.checkpoint_frequency_unit() == "iteration";

  models::ModelMetadata metadata;
  metadata.config = config;
  metadata.class_names = train.class_names;
  metadata.mean = norm.mean;
  metadata.std = norm.std;
  metadata.training = spec_;

  ProgressTable table;
  if (o.verbose()) {
    std::printf("Training on %s, execution environment '%s'%s\n", device_name.c_str(),
                o.execution_environment().c_str(), precision.describe().c_str());
    std::printf("%lld training images, %lld validation images, %lld iterations per epoch%s\n",
                static_cast<long long>(source.size()),
                static_cast<long long>(has_validation ? validation->size() : 0),
                static_cast<long long>(batches_per_epoch),
                state.iteration > 0
                    ? fmt::format(", resuming after iteration {}", state.iteration).c_str()
                    : "");
    if (initial_.file || !plan.frozen.empty() || plan.groups.size() > 1) {
      std::printf("%s", describe_transfer(initial_, config, plan).c_str());
    }
    table.print_header();
  }

  FitResult result;
  result.device = device_name;
  result.stop_reason = "max-epochs";
  double last_loss = 0, last_accuracy = 0;
  std::vector<at::Tensor> pending_losses;  // detached losses not yet checked for NaN/Inf
  std::vector<int64_t> pending_iterations;

  auto train_seconds = [&] { return before.train_seconds + process.seconds() - side_seconds; };
  // Share of this process's training time spent blocked on the data source.
  auto wait_share = [&] {
    return (source.wait_seconds() - wait_before) / std::max(1e-9, process.seconds() - side_seconds);
  };
  auto wall_seconds = [&] { return before.wall_seconds + process.seconds(); };
  // Host sync point: fails if any loss since the last check is NaN/Inf.
  auto check_losses = [&]() {
    if (pending_losses.empty()) return;
    auto values = torch::stack(pending_losses).to(torch::kCPU, torch::kFloat64);
    const double* v = values.data_ptr<double>();
    for (size_t i = 0; i < pending_losses.size(); ++i) {
      if (std::isfinite(v[i])) continue;
      result.iterations = pending_iterations[i];
      result.wall_seconds = wall_seconds();
      nlohmann::json summary = result.to_json();
      summary["stop_reason"] = "diverged";
      write_summary(run_dir_, summary);
      const std::string last = checkpoints.latest_weights();
      GPULAB_FAIL(ErrorKind::kRuntime,
                  "training diverged: the mini-batch loss is {} at iteration {}; {}. Lower "
                  "--learn-rate or set --gradient-threshold",
                  v[i], pending_iterations[i],
                  last.empty() ? "no checkpoint was written before it"
                               : "the last good checkpoint is '" + last + "'");
    }
    last_loss = v[pending_losses.size() - 1];
    pending_losses.clear();
    pending_iterations.clear();
  };
  auto save_checkpoint = [&]() {
    core::Stopwatch side;
    check_losses();
    state.wall_seconds = wall_seconds();
    state.train_seconds = train_seconds();
    state.history_lines = history.lines();
    checkpoints.save(*model, *optimizer, state);
    side_seconds += side.seconds();
  };

  bool stop = false;
  for (int64_t epoch = state.epoch; epoch <= o.max_epochs() && !stop; ++epoch) {
    // The epoch's remaining steps go to the source at once so a streaming
    // loader can prepare them ahead (and a distributed run can shard them).
    const at::Tensor order = sampler.order(epoch);
    std::vector<at::Tensor> steps;
    for (int64_t b = state.batch_in_epoch; b < batches_per_epoch; ++b) {
      const int64_t begin = b * o.batch_size();
      steps.push_back(order.slice(0, begin, std::min(source.size(), begin + o.batch_size())));
    }
    source.start_epoch(epoch, std::move(steps));
    for (int64_t b = state.batch_in_epoch; b < batches_per_epoch && !stop; ++b) {
      const data::Batch batch = source.next();
      const double lr =
          learn_rate_at(o, static_cast<double>(epoch - 1) +
                               static_cast<double>(b) / static_cast<double>(batches_per_epoch));
      set_learn_rate(*optimizer, lr, lr_factors);

      // Drop the gradients instead of zero-filling them: backward then stores
      // each new gradient rather than adding it to zeros (PyTorch 2.x's
      // default). Same result; ~1.2x faster CPU step (docs/benchmarks.md).
      for (auto& p : parameters) p.mutable_grad() = at::Tensor();
      at::Tensor output, loss;
      {
        auto autocast = precision.autocast();
        output = model->forward(precision.prepare(batch.input));
        loss = task_.loss(output.to(torch::kFloat32), batch.target);
      }
      loss.backward();
      clip_gradients(parameters, o.gradient_threshold_method(), o.gradient_threshold());
      optimizer->step();

      ++state.iteration;
      state.images_seen += batch.target.size(0);  // smaller when bad files were skipped
      const bool last_of_epoch = b + 1 == batches_per_epoch;
      state.epoch = last_of_epoch ? epoch + 1 : epoch;
      state.batch_in_epoch = last_of_epoch ? 0 : b + 1;
      pending_losses.push_back(loss.detach());
      pending_iterations.push_back(state.iteration);
      if (device.is_cpu()) check_losses();  // free on CPU: NaN is reported at once

      const bool last_of_run = last_of_epoch && epoch == o.max_epochs();
      const bool validate_now =
          has_validation && (state.iteration % o.validation_frequency() == 0 || last_of_run);
      const bool log_now = state.iteration == 1 || state.iteration % o.verbose_frequency() == 0 ||
                           last_of_epoch || validate_now;
      if (stop_flag_ && stop_flag_->load()) {
        result.stop_reason = "interrupted";
        stop = true;
      }
      if (log_now || stop) {
        core::Stopwatch side;
        check_losses();
        last_accuracy =
            static_cast<double>(task_.correct(output.detach(), batch.target).item<int64_t>()) /
            static_cast<double>(task_.predictions(batch.target));
        ProgressRow row;
        row.epoch = epoch;
        row.iteration = state.iteration;
        row.minibatch_loss = last_loss;
        row.minibatch_accuracy = last_accuracy;
        row.learn_rate = lr;
        if (validate_now) {
          const Evaluation ev = evaluate(*model, task_, *val_batcher, eval_batch, precision);
          set_training_mode(*model, true, plan);
          row.validation_loss = ev.loss;
          row.validation_accuracy = ev.accuracy;
          if (ev.loss < state.best_validation_loss) {
            state.best_validation_loss = ev.loss;
            state.best_validation_accuracy = ev.accuracy;
            state.best_iteration = state.iteration;
            state.validations_without_improvement = 0;
            if (o.output_network() == "best-validation") {
              models::save_model_file(best_path, *model, metadata);
            }
          } else {
            ++state.validations_without_improvement;
          }
          if (o.validation_patience() > 0 &&
              state.validations_without_improvement >= o.validation_patience()) {
            result.stop_reason = "validation-patience";
            stop = true;
          }
        }
        side_seconds += side.seconds();
        const int64_t done_here = state.iteration - before.iteration;
        row.elapsed_seconds = wall_seconds();
        row.images_per_second =
            static_cast<double>(state.images_seen) / std::max(1e-9, train_seconds());
        row.eta_seconds = process.seconds() / static_cast<double>(done_here) *
                          static_cast<double>(total_iterations - state.iteration);
        if (o.verbose()) table.print_row(row);
        nlohmann::json record = {{"epoch", epoch},
                                 {"iteration", state.iteration},
                                 {"time", row.elapsed_seconds},
                                 {"loss", last_loss},
                                 {"accuracy", last_accuracy},
                                 {"learn_rate", lr},
                                 {"images_per_second", row.images_per_second},
                                 {"data_wait_share", wait_share()}};
        if (row.validation_loss) {
          record["validation_loss"] = *row.validation_loss;
          record["validation_accuracy"] = *row.validation_accuracy;
        }
        history.append(record);
      }
      const bool checkpoint_now =
          stop || last_of_run ||
          (checkpoint_by_iteration && state.iteration % o.checkpoint_frequency() == 0) ||
          (!checkpoint_by_iteration && last_of_epoch && epoch % o.checkpoint_frequency() == 0);
      if (checkpoint_now) save_checkpoint();
    }
  }
  check_losses();
  if (o.verbose()) table.print_footer();

  result.iterations = state.iteration;
  result.epochs_completed = std::min(state.epoch - 1, o.max_epochs());
  result.minibatch_loss = last_loss;
  result.minibatch_accuracy = last_accuracy;
  result.train_seconds = train_seconds();
  result.images_per_second =
      static_cast<double>(state.images_seen) / std::max(1e-9, result.train_seconds);
  result.data_wait_seconds = source.wait_seconds() - wait_before;
  result.data_wait_share = wait_share();

  if (o.output_network() == "best-validation" && has_validation && fs::exists(best_path)) {
    models::load_state_dict(*model, models::state_dict(*models::load_model_file(best_path).network),
                            best_path);
  }
  if (has_validation) {
    const Evaluation ev = evaluate(*model, task_, *val_batcher, eval_batch, precision);
    result.validation_loss = ev.loss;
    result.validation_accuracy = ev.accuracy;
  }
  model->to(torch::kCPU);
  result.model_path = (fs::path(run_dir_) / "model.safetensors").string();
  models::save_model_file(result.model_path, *model, metadata);
  result.wall_seconds = wall_seconds();
  write_summary(run_dir_, result.to_json());
  return result;
}

}  // namespace gpulab::train
