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
#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/gradient_reducer.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/sync_batch_norm.h"
#include "gpulab/train/checkpoint.h"
#include "gpulab/train/gradient_clip.h"
#include "gpulab/train/graphed_step.h"
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

// Data-parallel steps between the ranks' votes on stopping (SIGINT/SIGTERM)
// outside the log rows: bounds how late a signal is obeyed.
//
// Host syncs of a data-parallel step (on a GPU, the CPU waits for the step's
// kernels there): the stop vote, one scalar all-reduce read back every
// kStopVotePeriod steps; with --skip-bad-files, the decoded image count, read
// back every step before the forward pass (each rank must know the global
// count to weight its loss and to skip an empty step); a log row. The
// gradient buckets and synchronised batch-norm stay on the device.
constexpr int64_t kStopVotePeriod = 10;

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
};

// Sums `values` over the ranks (a no-op for one process). NCCL reduces
// device tensors, Gloo host ones.
std::vector<double> sum_over_ranks(distributed::Communicator& comm, c10::Device device,
                                   std::vector<double> values) {
  if (!comm.world().is_distributed()) return values;
  auto t = torch::tensor(values, torch::kFloat64)
               .to(comm.backend() == "nccl" ? device : c10::Device(c10::kCPU));
  std::vector<at::Tensor> tensors{t};
  comm.all_reduce_sum(tensors);
  t = tensors[0].cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[i].item<double>();
  return values;
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

// Each rank evaluates its contiguous share of the set; the sums are combined.
Evaluation evaluate(models::Network& model, const Task& task, const data::ResidentBatcher& batcher,
                    int64_t batch_size, const StepPrecision& precision, distributed::Communicator& comm) {
  broadcast_state(model, comm, /*buffers_only=*/true);
  torch::NoGradGuard no_grad;
  model.eval();
  const distributed::World& world = comm.world();
  const int64_t first = batcher.size() * world.rank / world.size;
  const int64_t last = batcher.size() * (world.rank + 1) / world.size;
  auto loss_sum =
      torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(batcher.device()));
  auto correct =
      torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(batcher.device()));
  int64_t predictions = 0;
  for (int64_t b = first; b < last; b += batch_size) {
    auto batch = batcher.range(b, std::min(last, b + batch_size));
    auto guard = precision.autocast();
    auto out = model.forward(precision.prepare(batch.input)).to(torch::kFloat32);
    loss_sum += task.loss(out, batch.target).to(torch::kFloat64) * batch.target.size(0);
    correct += task.correct(out, batch.target);
    predictions += task.predictions(batch.target);
  }
  const auto sums =
      sum_over_ranks(comm, batcher.device(),
                     {loss_sum.item<double>(), static_cast<double>(correct.item<int64_t>()),
                      static_cast<double>(predictions)});
  return {sums[0] / static_cast<double>(batcher.size()), sums[1] / sums[2]};
}

// Names and shapes of every parameter and buffer, hashed (FNV-1a, the same in
// every build): ranks whose networks differ in width or depth differ here.
std::string layout_fingerprint(const models::Network& model) {
  uint64_t hash = 1469598103934665603ull;
  int64_t values = 0;
  const auto tensors = models::state_dict(model);
  for (const auto& [name, t] : tensors) {
    for (const char c : fmt::format("{}{};", name, t.sizes())) {
      hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    values += t.numel();
  }
  return fmt::format("{} tensors, {} values, layout {:016x}", tensors.size(), values, hash);
}

// Ranks started with different settings would train different replicas or
// deadlock in a collective: refuse at start-up, naming what differs.
void check_same_configuration(distributed::Communicator& comm, const models::ModelConfig& config,
                              const models::Network& model, const TrainOptions& o,
                              int64_t train_images, const data::Dataset& train,
                              int64_t validation_images, bool may_drop_samples) {
  comm.check_same_on_all_ranks("model", config.to_json().dump() + ", " + layout_fingerprint(model));
  comm.check_same_on_all_ranks(
      "data and schedule",
      fmt::format("{} training images in {} classes, batch {}, {} epochs, shuffle {}, seed {}, "
                  "world size {}, sync batch-norm {}",
                  train_images, train.class_names.size(), o.batch_size(), o.max_epochs(),
                  o.shuffle(), o.seed(), comm.world().size, o.sync_batchnorm()));
  comm.check_same_on_all_ranks(
      "optimizer",
      fmt::format("{} learn rate {:g} ({} schedule, drop {:g} every {}, warm-up {:g}), momentum "
                  "{:g}, betas {:g}/{:g}, decay {:g}, epsilon {:g}, L2 {:g}, gradient threshold "
                  "{:g} ({}), factors [{}], frozen [{}]",
                  o.solver(), o.learn_rate(), o.lr_schedule(), o.lr_drop_factor(),
                  o.lr_drop_period(), o.warmup_epochs(), o.momentum(), o.beta1(), o.beta2(),
                  o.rmsprop_decay(), o.epsilon(), o.l2_regularization(), o.gradient_threshold(),
                  o.gradient_threshold_method(), fmt::join(o.learn_rate_factors(), ", "),
                  fmt::join(o.freeze(), ", ")));
  // What decides when and how the collectives run: ranks that differ here
  // meet in mismatched collectives (a Gloo abort, an NCCL hang), not in a
  // wrong result, so they are refused by name.
  comm.check_same_on_all_ranks(
      "collectives",
      fmt::format("log every {} iterations (--verbose-frequency), {} validation images every {} "
                  "iterations (--validation-frequency, patience {}), checkpoint every {} {} "
                  "(--checkpoint-frequency), skipped bad files {} (--skip-bad-files), gradient "
                  "buckets {:g}/{:g} MiB (--bucket-cap-mb/--first-bucket-cap-mb), precision {}",
                  o.verbose_frequency(), validation_images, o.validation_frequency(),
                  o.validation_patience(), o.checkpoint_frequency(), o.checkpoint_frequency_unit(),
                  may_drop_samples ? "synchronised" : "refused", o.bucket_cap_mb(),
                  o.first_bucket_cap_mb(), o.precision()));
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
          {"images_seen", images_seen},
          {"images_per_second", images_per_second},
          {"data_wait_seconds", data_wait_seconds},
          {"data_wait_share", data_wait_share},
          {"device", device},
          {"world_size", world_size},
          {"dist_backend", dist_backend},
          {"allreduce_wait_seconds", allreduce_wait_seconds},
          {"cuda_graphs", cuda_graphs},
          {"cuda_graph_captures", cuda_graph_captures},
          {"cuda_graph_replays", cuda_graph_replays},
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
  // A rank of a data-parallel job keeps its data on its own GPU.
  const int local_rank = communicator_ != nullptr ? communicator_->world().local_rank : 0;
  const c10::Device device = core::resolve_device(
      core::parse_execution_environment(options_.execution_environment()), local_rank);
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
  std::unique_ptr<distributed::Communicator> own_communicator;
  distributed::Communicator* comm = communicator_;
  if (comm == nullptr) {
    own_communicator = distributed::single_process_communicator();
    comm = own_communicator.get();
  }
  const distributed::World& world = comm->world();
  const bool main_rank = world.is_main();
  const bool distributed = world.is_distributed();
  TrainOptions o = options_;
  if (o.scale_with_workers()) {
    o.batch_size(o.batch_size() * world.size);
    o.learn_rate(o.learn_rate() * world.size);
  }
  GPULAB_CHECK(o.batch_size() >= world.size, ErrorKind::kInvalidArgument,
               "the mini-batch of {} images is split over {} ranks: give each rank at least one "
               "(--batch-size >= {}, or --scale-with-workers)",
               o.batch_size(), world.size, world.size);
  const bool verbose = o.verbose() && main_rank;
  core::Stopwatch process;  // this process's wall time
  double side_seconds = 0;  // of which validation, logging, checkpoints
  const c10::Device device = core::resolve_device(
      core::parse_execution_environment(o.execution_environment()), world.local_rank);
  // CPU ranks on one node share its cores unless --threads says otherwise.
  const int cpu_ranks_here = distributed && device.is_cpu() ? std::max(1, world.local_size) : 1;
  core::configure_threads(o.threads(), cpu_ranks_here);
  const StepPrecision precision(device, o);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(o.cudnn_benchmark());
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
  if (distributed) {
    check_same_configuration(*comm, config, *model, o, source.size(), train,
                             has_validation ? validation->size() : 0, source.may_drop_samples());
  }
  int synced_batch_norms = 0;
  if (distributed && o.sync_batchnorm()) {
    synced_batch_norms = models::set_batch_norm_all_reduce(*model, [comm](at::Tensor& t) {
      std::vector<at::Tensor> one{t};
      comm->all_reduce_sum(one);
    });
  }
  const ParameterPlan plan = plan_parameters(*model, learn_rate_rules(o));
  const std::vector<double> lr_factors = plan.factors();
  const std::vector<at::Tensor> parameters = plan.trainable();
  std::vector<std::vector<at::Tensor>> groups;
  for (const auto& g : plan.groups) groups.push_back(g.parameters);
  auto optimizer = make_optimizer(o, groups);
  set_training_mode(*model, true, plan);

  CheckpointStore checkpoints((fs::path(run_dir_) / "checkpoints").string(), o.checkpoints_kept(),
                              /*writer=*/main_rank);
  HistoryLog history((fs::path(run_dir_) / "history.jsonl").string());
  TrainerState state;
  state.batch_size = o.batch_size();
  // A run killed before its first checkpoint resumes from the beginning.
  // Every rank reads the same checkpoint (RUN_DIR is shared), so a run may
  // resume with another world size: the position is in global mini-batches.
  if (resume && checkpoints.has_latest()) {
    state = checkpoints.load_latest(*model, *optimizer);
    rebase_to_batch_size(state, o.batch_size());
    move_optimizer_state(*optimizer, device);
    if (main_rank) history.truncate_to(state.history_lines);
  } else if (main_rank) {
    history.truncate_to(0);
  }
  broadcast_state(*model, *comm, /*buffers_only=*/false);
  std::unique_ptr<distributed::GradientReducer> reducer;
  if (distributed) {
    reducer =
        std::make_unique<distributed::GradientReducer>(parameters, *comm,
                                                distributed::ReducerOptions()
                                                    .bucket_cap_mb(o.bucket_cap_mb())
                                                    .first_bucket_cap_mb(o.first_bucket_cap_mb()));
  }
  // One process on a GPU: the step is replayed as a CUDA graph once it repeats.
  const std::string graph_blocker = cuda_graph_blocker(o, device, distributed);
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
  if (verbose) {
    if (distributed) {
      std::printf(
          "Training on %s, %s each%s, execution environment '%s'%s\n",
          distributed::describe_world(world, device.is_cuda() ? "GPU" : "CPU",
                               comm->backend() == "nccl" ? "NCCL" : "Gloo")
              .c_str(),
          device_name.c_str(),
          o.threads() == 0 && cpu_ranks_here > 1
              ? fmt::format(" (the node's cores shared by its {} ranks)", cpu_ranks_here).c_str()
              : "",
          o.execution_environment().c_str(), precision.describe().c_str());
      std::printf(
          "Global mini-batch %lld (%lld per rank), learn rate %g, gradients in %zu "
          "buckets\n",
          static_cast<long long>(o.batch_size()),
          static_cast<long long>(o.batch_size() / world.size), o.learn_rate(),
          reducer->buckets().size());
      if (o.sync_batchnorm()) {
        std::printf("Batch-norm statistics over the global mini-batch in %d layers\n",
                    synced_batch_norms);
      }
    } else {
      std::printf("Training on %s, execution environment '%s'%s%s\n", device_name.c_str(),
                  o.execution_environment().c_str(), precision.describe().c_str(),
                  !device.is_cuda()       ? ""
                  : graph_blocker.empty() ? ", steps replayed as CUDA graphs"
                                          : (", CUDA graphs off: " + graph_blocker).c_str());
    }
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
  result.world_size = world.size;
  result.dist_backend = comm->backend();
  result.stop_reason = "max-epochs";
  double last_loss = 0, last_accuracy = 0;
  std::vector<at::Tensor> pending_losses;  // detached losses not yet checked for NaN/Inf
  std::vector<int64_t> pending_iterations;

  // The step's two halves, shared by the eager and the graphed step. The
  // loss is weighted so the average over ranks is the global batch's mean
  // loss even when the slices differ in size (1 in one process).
  double loss_weight = 1;
  auto forward_backward = [&](const at::Tensor& input, const at::Tensor& target) {
    StepTensors out;
    {
      auto autocast = precision.autocast();
      out.output = model->forward(precision.prepare(input));
      out.loss = task_.loss(out.output.to(torch::kFloat32), target);
    }
    (distributed ? out.loss * loss_weight : out.loss).backward();
    return out;
  };
  // A step with no images of this rank's own, for --sync-batchnorm: the
  // synchronised layers' collectives (and the gradient buckets, in the same
  // order as on the other ranks) run with zero counts, sums and gradients.
  auto empty_forward_backward = [&] {
    const at::Tensor empty = torch::zeros({0, train.channels(), train.height(), train.width()},
                                          torch::TensorOptions().device(device));
    at::Tensor output;
    {
      auto autocast = precision.autocast();
      output = model->forward(precision.prepare(empty));
    }
    // The sum of no outputs: every gradient it gives is a sum over no images.
    output.to(torch::kFloat32).sum().backward();
  };
  auto update = [&] {
    if (reducer) {
      reducer->finish();
      result.allreduce_wait_seconds += reducer->last_trace().wait_seconds;
    }
    clip_gradients(parameters, o.gradient_threshold_method(), o.gradient_threshold());
    optimizer->step();
  };
  std::unique_ptr<GraphedStep> graphed;
  if (graph_blocker.empty()) {
    graphed = std::make_unique<GraphedStep>(device, parameters,
                                            [&](const at::Tensor& input, const at::Tensor& target) {
                                              StepTensors out = forward_backward(input, target);
                                              update();
                                              return out;
                                            });
  }

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
      if (main_rank) write_summary(run_dir_, summary);
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
  // Rank 0 writes; the others wait at the barrier so a checkpoint is a
  // point every rank has passed.
  auto save_checkpoint = [&]() {
    core::Stopwatch side;
    check_losses();
    state.wall_seconds = wall_seconds();
    state.train_seconds = train_seconds();
    state.history_lines = history.lines();
    if (main_rank) checkpoints.save(*model, *optimizer, state);
    comm->barrier();
    side_seconds += side.seconds();
  };

  bool stop = false;
  for (int64_t epoch = state.epoch; epoch <= o.max_epochs() && !stop; ++epoch) {
    // The epoch's remaining steps go to the source at once so a streaming
    // loader can prepare them ahead (and a distributed run can shard them).
    const at::Tensor order = sampler.order(epoch);
    std::vector<at::Tensor> steps;
    std::vector<int64_t> global_sizes;
    // state.batch_in_epoch moves on inside the step loop: keep where it began.
    const int64_t first_batch = state.batch_in_epoch;
    for (int64_t b = first_batch; b < batches_per_epoch; ++b) {
      const int64_t begin = b * o.batch_size();
      const int64_t end = std::min(source.size(), begin + o.batch_size());
      // This rank's slice of the global mini-batch of the shared permutation.
      const int64_t global_n = end - begin;
      steps.push_back(order.slice(0, begin + global_n * world.rank / world.size,
                                  begin + global_n * (world.rank + 1) / world.size));
      global_sizes.push_back(global_n);
    }
    source.start_epoch(epoch, std::move(steps));
    for (int64_t b = first_batch; b < batches_per_epoch && !stop; ++b) {
      const data::Batch batch = source.next();
      const int64_t global_n = global_sizes[b - first_batch];
      const int64_t local_n = batch.target.size(0);  // smaller when bad files were skipped
      const double lr =
          learn_rate_at(o, static_cast<double>(epoch - 1) +
                               static_cast<double>(b) / static_cast<double>(batches_per_epoch));
      set_learn_rate(*optimizer, lr, lr_factors);

      at::Tensor output, loss;
      // Images this step trained on, over every rank: the decoded count
      // where files may have been skipped (as one process counts), else the
      // planned global mini-batch.
      int64_t step_images = distributed ? global_n : local_n;
      if (graphed && local_n > 0) {
        const StepTensors step = graphed->run(batch.input, batch.target, lr);
        output = step.output;
        // A replay overwrites its loss tensor at the next step.
        loss = step.loss.detach().clone();
      } else if (graphed) {
        // Every file of the batch was skipped: no gradient, no update.
        loss = torch::zeros({}, torch::TensorOptions().device(device));
      } else {
        // Drop the gradients instead of zero-filling them: backward then stores
        // each new gradient rather than adding it to zeros (PyTorch 2.x's
        // default). Same result; ~1.2x faster CPU step (docs/benchmarks.md).
        for (auto& p : parameters) p.mutable_grad() = at::Tensor();
        // Files skipped on some ranks: weight each rank's loss by the global
        // batch actually decoded, and skip a step no rank has an image for,
        // as one process does. One small all-reduce, only when files may be
        // skipped.
        const int64_t decoded_n =
            distributed && source.may_drop_samples()
                ? std::llround(sum_over_ranks(*comm, device, {static_cast<double>(local_n)})[0])
                : global_n;
        if (distributed) step_images = decoded_n;
        loss = torch::zeros({}, torch::TensorOptions().device(device));
        if (decoded_n > 0) {
          if (reducer) reducer->prepare_for_backward();
          if (local_n > 0) {
            loss_weight =
                static_cast<double>(local_n * world.size) / static_cast<double>(decoded_n);
            const StepTensors step = forward_backward(batch.input, batch.target);
            output = step.output;
            loss = step.loss;
          } else if (synced_batch_norms > 0) {
            // Synchronised batch-norm layers all-reduce in forward and
            // backward: a rank with no images still runs both, on an empty
            // batch that adds nothing to the statistics or the gradients.
            empty_forward_backward();
          }
          update();
        }
      }

      ++state.iteration;
      state.images_seen += step_images;
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
      // Every rank must stop at the same iteration: a signal may reach the
      // ranks a step apart, so they agree on it. The vote rides in the log
      // row's all-reduce, and runs alone every kStopVotePeriod steps, so the
      // other steps' only collectives are the gradient buckets.
      const double stop_vote = stop_flag_ && stop_flag_->load() ? 1.0 : 0.0;
      auto vote_to_stop = [&](double votes) {
        if (votes > 0 && !stop) {
          result.stop_reason = "interrupted";
          stop = true;
        }
      };
      if (!log_now && (!distributed || state.iteration % kStopVotePeriod == 0)) {
        vote_to_stop(sum_over_ranks(*comm, device, {stop_vote})[0]);
      }
      if (log_now || stop) {
        core::Stopwatch side;
        check_losses();
        // The global mini-batch's loss and accuracy.
        const bool has_output = local_n > 0;
        const auto sums = sum_over_ranks(
            *comm, device,
            {last_loss * static_cast<double>(local_n),
             has_output
                 ? static_cast<double>(task_.correct(output.detach(), batch.target).item<int64_t>())
                 : 0.0,
             has_output ? static_cast<double>(task_.predictions(batch.target)) : 0.0, stop_vote,
             static_cast<double>(local_n)});
        vote_to_stop(sums[3]);
        // Over the images decoded (fewer than planned when files were skipped).
        last_loss = sums[0] / std::max(1.0, sums[4]);
        last_accuracy = sums[1] / std::max(1.0, sums[2]);
        ProgressRow row;
        row.epoch = epoch;
        row.iteration = state.iteration;
        row.minibatch_loss = last_loss;
        row.minibatch_accuracy = last_accuracy;
        row.learn_rate = lr;
        if (validate_now) {
          const Evaluation ev = evaluate(*model, task_, *val_batcher, eval_batch, precision, *comm);
          set_training_mode(*model, true, plan);
          row.validation_loss = ev.loss;
          row.validation_accuracy = ev.accuracy;
          if (ev.loss < state.best_validation_loss) {
            state.best_validation_loss = ev.loss;
            state.best_validation_accuracy = ev.accuracy;
            state.best_iteration = state.iteration;
            state.validations_without_improvement = 0;
            if (o.output_network() == "best-validation" && main_rank) {
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
        if (verbose) table.print_row(row);
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
        if (main_rank) history.append(record);
      }
      const bool checkpoint_now =
          stop || last_of_run ||
          (checkpoint_by_iteration && state.iteration % o.checkpoint_frequency() == 0) ||
          (!checkpoint_by_iteration && last_of_epoch && epoch % o.checkpoint_frequency() == 0);
      if (checkpoint_now) save_checkpoint();
    }
  }
  check_losses();
  if (verbose) table.print_footer();

  result.iterations = state.iteration;
  result.epochs_completed = std::min(state.epoch - 1, o.max_epochs());
  result.minibatch_loss = last_loss;
  result.minibatch_accuracy = last_accuracy;
  result.train_seconds = train_seconds();
  result.images_seen = state.images_seen;
  result.images_per_second =
      static_cast<double>(state.images_seen) / std::max(1e-9, result.train_seconds);
  result.data_wait_seconds = source.wait_seconds() - wait_before;
  result.data_wait_share = wait_share();
  if (graphed) {
    result.cuda_graph_captures = graphed->captures();
    result.cuda_graph_replays = graphed->replays();
    result.cuda_graphs = graphed->capture_error().empty()
                             ? "on"
                             : "capture failed, steps ran eagerly: " + graphed->capture_error();
    if (verbose && !graphed->capture_error().empty()) {
      std::printf("Warning: the CUDA graph capture failed, so the steps ran eagerly: %s\n",
                  graphed->capture_error().c_str());
    }
  } else {
    result.cuda_graphs = "off: " + graph_blocker;
  }

  if (o.output_network() == "best-validation" && has_validation && main_rank &&
      fs::exists(best_path)) {
    models::load_state_dict(*model, models::state_dict(*models::load_model_file(best_path).network),
                            best_path);
  }
  broadcast_state(*model, *comm, /*buffers_only=*/false);
  if (has_validation) {
    const Evaluation ev = evaluate(*model, task_, *val_batcher, eval_batch, precision, *comm);
    result.validation_loss = ev.loss;
    result.validation_accuracy = ev.accuracy;
  }
  model->to(torch::kCPU);
  result.model_path = (fs::path(run_dir_) / "model.safetensors").string();
  if (main_rank) models::save_model_file(result.model_path, *model, metadata);
  result.wall_seconds = wall_seconds();
  if (main_rank) write_summary(run_dir_, result.to_json());
  // No rank leaves (and rank 0 takes the rendezvous store down) before the
  // model is written.
  comm->barrier();
  return result;
}

}  // namespace gpulab::train
