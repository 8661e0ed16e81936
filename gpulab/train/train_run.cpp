// run_training: spec -> weights and network -> options -> world -> RUN_DIR ->
// task and data -> trainer.
#include "gpulab/train/train_run.h"

#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/data/training_data.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/loader.h"
#endif
#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/rank_spawner.h"
#include "gpulab/distributed/world.h"
#include "gpulab/models/registry.h"
#include "gpulab/tasks/task_registry.h"
#include "gpulab/train/initial_weights.h"
#include "gpulab/train/run_folder.h"
#include "gpulab/train/trainer.h"

namespace gpulab::train {
namespace fs = std::filesystem;
namespace {

// The spec resolved before anything is written.
struct Resolved {
  nlohmann::json spec;
  TrainOptions options;
  std::string task;
  std::string arch;
  std::shared_ptr<const models::WeightFile> weights;  // null: none, or a resume
  bool from_checkpoint = false;
};

Resolved resolve(nlohmann::json spec, const TrainRunOptions& run) {
  Resolved r;
  GPULAB_CHECK(spec.contains("data") && !spec["data"].get<std::string>().empty(),
               ErrorKind::kInvalidArgument,
               "training needs `data`: an IDX folder or an image folder");
  r.task = tasks::resolve_task_name(spec.value("task", std::string("classify")));
  spec["task"] = r.task;
  // Weights to start from: they may name the architecture and its options. A
  // run resumed from a checkpoint has every weight, and spec.yaml what the
  // file resolved (architecture, options, normalisation): the file is not read.
  r.from_checkpoint = run.resume() && has_checkpoint(run.run_dir());
  if (spec.contains("weights") && !(r.from_checkpoint && spec.contains("weights_normalization"))) {
    auto weights = std::make_shared<models::WeightFile>(
        models::read_weight_file(spec["weights"].get<std::string>()));
    resolve_model_from_weights(spec, *weights);
    r.weights = std::move(weights);
  }
  GPULAB_CHECK(spec.contains("weights") || spec.value("num_classes", int64_t{0}) <= 0,
               ErrorKind::kInvalidArgument,
               "`num_classes` replaces the classifier head of `weights`; without `weights` the "
               "network has one output per class of the data (choose them with `classes`)");
  const tasks::TaskInfo task = tasks::task_info(r.task);
  if (!spec.contains("model")) spec["model"] = task.default_model;
  // The task's recipe first, so the run's own options win.
  r.options.apply_json(task.default_options, "the " + r.task + " task's defaults");
  r.options.apply_json(spec.value("options", nlohmann::json::object()), run.origin());
  r.options.validate();
  // The options as resolved, every default filled in.
  spec["options"] = r.options.to_json();
  // Fail on an unknown model before any data is read.
  r.arch = models::resolve_model_name(spec["model"].get<std::string>());
  spec["model"] = r.arch;
  // Before anything in RUN_DIR is rewritten: the checkpoint's optimizer needs its rules.
  if (r.from_checkpoint) check_resume_rules(run.run_dir(), r.options);
  r.spec = std::move(spec);
  return r;
}

// The world this process is a rank of (one process unless the execution
// environment is data-parallel).
distributed::World world_of(const TrainOptions& options, bool data_parallel) {
  if (data_parallel) return distributed::World::from_environment();
  distributed::World launched;
  try {
    launched = distributed::World::from_environment();
  } catch (const Error&) {
    return {};  // stray or partial variables: the parallel environment reports them
  }
  distributed::refuse_launcher_ranks(launched, options.execution_environment());
  return {};
}

// RUN_DIR made (by rank 0) and its archive kept; the spec as spec.yaml holds it.
nlohmann::json prepare_folder(Resolved& r, const TrainRunOptions& run,
                              distributed::Communicator& comm) {
  // Rank 0 alone makes and writes RUN_DIR; the others wait until it exists.
  if (comm.world().is_main()) prepare_run_dir(run.run_dir(), run.resume());
  // The archive trained as the network lives in RUN_DIR: the run must not
  // depend on a file elsewhere.
  if (r.arch == "torchscript" && r.weights) {
    const std::string archive = r.spec["model_options"].value("file", std::string());
    if (comm.world().is_main()) keep_archive_in_run(archive, run.run_dir());
    r.spec["model_options"]["file"] = kRunArchive;
  }
  comm.barrier();
  nlohmann::json file_spec = {{"format_version", kSpecFormatVersion},
                              {"gpulab_version", GPULAB_VERSION},
                              {"command", "train"},
                              {"seed", r.options.seed()}};
  for (auto it = r.spec.begin(); it != r.spec.end(); ++it) file_spec[it.key()] = it.value();
  return file_spec;
}

// What the task's datastore is asked for. Remote data is fetched once, here;
// the loaders read its local view, and messages, spec.yaml and the model's
// metadata show the URL, redacted.
data::DataRequest data_request(const Resolved& r, nlohmann::json& file_spec,
                               const TrainRunOptions& run, const distributed::World& world,
                               c10::Device device, const core::Log& log) {
  data::DataRequest request;
  request.options = data::DataOptions::from_json(
      r.spec.value("data_options", nlohmann::json::object()), run.origin());
  // Images are converted to the channels the weights expect (grey data for
  // ImageNet weights becomes RGB), unless data option channels says otherwise.
  if (r.weights && request.options.channels == 0) {
    request.options.channels = weights_input_channels(*r.weights);
    // Recorded: a run resumed from a checkpoint reads no weights file.
    if (request.options.channels > 0) {
      file_spec["data_options"]["channels"] = request.options.channels;
    }
  }
  request.train = data::resolve_data_path(r.spec["data"].get<std::string>(), request.options,
                                          run.remote(), log);
  const std::string val_source = r.spec.value("val_data", std::string());
  if (!val_source.empty()) {
    request.validation = data::resolve_data_path(val_source, request.options, run.remote(), log);
    file_spec["val_data"] = request.validation.source;
  }
  file_spec["data"] = request.train.source;
  request.val_split = r.options.val_split();
  request.val_limit = r.spec.value("val_limit", int64_t{0});
  request.seed = r.options.seed();
  request.device = device;
  request.channels_last = device.is_cuda() && r.options.channels_last();
  request.ranks_on_machine = world.is_distributed() ? std::max(1, world.local_size) : 1;
  request.index_cache_dir = run.remote().index_cache_dir;
  request.log = log;
  if (r.weights) {
    request.weights_normalization = [weights = r.weights, arch = r.arch](int64_t channels) {
      return weights_normalization(*weights, arch, channels);
    };
  } else if (r.spec.contains("weights_normalization")) {
    const auto recorded = normalization_from_spec(r.spec["weights_normalization"]);
    request.weights_normalization = [recorded](int64_t) { return recorded; };
  }
  return request;
}

// The files the data left out: known at opening, plus those the streaming
// loader met. With shuffling a bad file may fall to several ranks over the
// epochs, so a data-parallel job counts the union of their sets.
std::function<int64_t()> skipped_counter(const data::TrainingData& data,
                                         distributed::Communicator& comm, c10::Device device) {
  return [&data, &comm, device] {
    int64_t skipped = data.skipped_files;
#ifdef GPULAB_WITH_OPENCV
    const data::StreamingLoader* loader = data.streaming;
    if (loader == nullptr) return skipped;
    if (!comm.world().is_distributed() || !loader->may_drop_samples()) {
      return skipped + loader->skipped_files();
    }
    torch::Tensor bad = torch::zeros({loader->size()}, torch::kInt32);
    for (int64_t row : loader->skipped_samples()) bad[row] = 1;
    std::vector<torch::Tensor> merged = {
        bad.to(comm.backend() == "nccl" ? device : c10::Device(c10::kCPU))};
    comm.all_reduce_sum(merged);
    skipped += merged[0].gt(0).sum().item<int64_t>();
#else
    (void)comm;
    (void)device;
#endif
    return skipped;
  };
}

FitResult train_rank(Resolved& r, const TrainRunOptions& run, distributed::Communicator& comm,
                     c10::Device device) {
  nlohmann::json file_spec = prepare_folder(r, run, comm);
  const bool report = comm.world().is_main() && r.options.verbose();
  const core::Log log = report ? run.log() : core::Log();
  data::DataRequest request = data_request(r, file_spec, run, comm.world(), device, log);
  tasks::TaskConfig config{r.arch, run_model_options(r.spec, run.run_dir()),
                           r.spec.value("task_options", nlohmann::json::object())};
  std::unique_ptr<tasks::Task> task = tasks::create_task(r.task, config);
  const data::TrainingData data = task->open_training_data(request);
  const std::optional<InitialWeights> initial =
      initial_weights(r.spec, file_spec, r.weights, r.arch, data.labels, data.channels);
  // On a resume this records options that changed (e.g. more epochs).
  if (comm.world().is_main()) write_spec_file(run.run_dir(), file_spec);

  Trainer trainer(*task, r.options, run.run_dir(), file_spec);
  if (initial) trainer.set_initial_weights(*initial);
  trainer.set_stop_flag(run.stop_flag());
  trainer.set_communicator(&comm);
  TrainingSet set;
  set.source = data.source.get();
  set.shape = {data.channels, data.height, data.width, data.labels, data.label_counts};
  set.normalization = data.normalization;
  set.validation = data.validation ? &*data.validation : nullptr;
  set.count_skipped_files = skipped_counter(data, comm, device);
  return trainer.fit(set, run.resume());
}

}  // namespace

TrainRunResult run_training(nlohmann::json spec, const TrainRunOptions& run) {
  Resolved r = resolve(std::move(spec), run);
  // Everything that can be checked without data is checked before RUN_DIR is made.
  const auto env = core::parse_execution_environment(r.options.execution_environment());
  const bool data_parallel =
      env == core::ExecutionEnvironment::kParallel || env == core::ExecutionEnvironment::kMultiGpu;
  const distributed::World world = world_of(r.options, data_parallel);
  TrainRunResult result;
  result.rank = world.rank;
  result.verbose = r.options.verbose();
  if (env == core::ExecutionEnvironment::kMultiGpu && !world.is_distributed()) {
    result.spawned_exit_code = distributed::spawn_gpu_ranks(run.command_line());
    return result;
  }
  const c10::Device device = core::resolve_device(env, world.local_rank);
  std::unique_ptr<distributed::Communicator> comm;
  try {
    comm = distributed::connect(world, device,
                                distributed::CommunicatorOptions()
                                    .backend(r.options.dist_backend())
                                    .timeout_seconds(r.options.dist_timeout()));
    result.fit = train_rank(r, run, *comm, device);
    return result;
  } catch (const distributed::PeerLostError&) {
    throw;  // another rank's failure, already named
  } catch (const std::exception& e) {
    // The other ranks' errors then name this rank and its reason.
    if (comm) comm->announce_failure(e.what());
    throw;
  }
}

}  // namespace gpulab::train
