// gpulab train: flags and --config into a run spec, data loading, the trainer.
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#include "apps/gpulab/loader_flags.h"
#include "apps/gpulab/train_resume.h"
#include "apps/gpulab/train_spec.h"
#ifdef GPULAB_WITH_OPENCV
#include "apps/gpulab/streaming_data.h"
#endif
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/config_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/duration.h"
#include "gpulab/core/error.h"
#include "gpulab/data/split.h"
#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/local_launcher.h"
#include "gpulab/distributed/world.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/train/trainer.h"

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) {
  g_stop_requested.store(true);
}

void check_run_dir(const std::string& out, bool resume) {
  if (resume) {
    GPULAB_CHECK(fs::is_directory(out), ErrorKind::kNotFound,
                 "--resume: run folder '{}' does not exist", out);
    return;
  }
  if (fs::exists(out)) {
    GPULAB_CHECK(fs::is_directory(out) && fs::is_empty(out), ErrorKind::kInvalidArgument,
                 "run folder '{}' already exists; continue it with --resume, or choose "
                 "another --out (gpulab never overwrites a run)",
                 out);
  }
  core::ensure_writable_dir(out);
}

// A gpulab or MatConvNet file names its network: it becomes the model (with
// its options) unless --model says otherwise, which must then agree.
void resolve_model_from_weights(nlohmann::json& spec, const models::WeightFile& weights) {
  spec["model"] = models::resolve_weights_arch(spec.value("model", std::string()), weights);
  if (spec["model"] == "torchscript" && weights.format == "gpulab") {
    // A trained TorchScript network (a run's model file): the archive it names,
    // relative to the file, with its trained tensors loaded over it.
    nlohmann::json options = weights.metadata->config.options;
    const fs::path archive = options.value("file", std::string());
    if (archive.is_relative()) {
      options["file"] =
          (fs::absolute(weights.path).parent_path() / archive).lexically_normal().string();
    }
    spec["model_options"] = options;
    return;
  }
  if (spec["model"] == "torchscript") {
    // The archive is the network: whole, or a frozen feature extractor with a
    // new head when --num-classes asks for one.
    spec["model_options"]["file"] = weights.path;
    spec["model_options"]["feature_extractor"] = spec.value("num_classes", int64_t{0}) > 0;
    return;
  }
  if (!weights.metadata) return;
  nlohmann::json options = weights.metadata->config.options;
  for (auto it = spec["model_options"].begin(); it != spec["model_options"].end(); ++it)
    options[it.key()] = it.value();
  spec["model_options"] = options;
}

// The normalisation the weights were trained with: the file's own, else
// ImageNet's for RGB images (torchvision's, as predict assumes); unset (computed
// from the data) for other images.
std::optional<data::Normalization> weights_normalization(const models::WeightFile& weights,
                                                         const std::string& arch,
                                                         int64_t channels) {
  if (weights.metadata) return data::Normalization{weights.metadata->mean, weights.metadata->std};
  if (channels != 3) return std::nullopt;
  const models::ModelMetadata imagenet = models::torchvision_metadata(arch, 1);
  return data::Normalization{imagenet.mean, imagenet.std};
}

// The head is replaced when --num-classes asks for it; a head whose class
// count differs from the data's without it is an error with the fix. A
// TorchScript archive is the network itself (models::TorchScriptNetwork loads
// it): only its normalisation is taken from here; a run's model file of one
// has its trained tensors loaded too.
train::InitialWeights transfer_start(const nlohmann::json& spec,
                                     std::shared_ptr<const models::WeightFile> weights,
                                     const std::string& arch,
                                     const std::vector<std::string>& class_names,
                                     int64_t channels) {
  const int64_t data_classes = static_cast<int64_t>(class_names.size());
  const int64_t wanted = spec.value("num_classes", int64_t{0});
  GPULAB_CHECK(wanted <= 0 || wanted == data_classes, ErrorKind::kInvalidArgument,
               "--num-classes {} but the training data has {} classes ({})", wanted, data_classes,
               fmt::join(class_names, ", "));
  train::InitialWeights initial;
  initial.normalization = weights_normalization(*weights, arch, channels);
  if (arch == "torchscript" && weights->format == "torchscript") return initial;
  const int64_t file_classes = models::head_classes(*weights, arch);
  // A whole TorchScript network has no head of its own: its archive's output
  // is checked against the data when it is built.
  const bool headless = arch == "torchscript" && file_classes == 0;
  GPULAB_CHECK(wanted > 0 || headless || file_classes == data_classes, ErrorKind::kInvalidArgument,
               "--weights '{}' has a {}-class head but the training data has {} classes; "
               "add --num-classes {} to replace the head",
               weights->path, file_classes, data_classes, data_classes);
  initial.replace_head = wanted > 0;
  initial.file = std::move(weights);
  return initial;
}

// The input channels of the network in `weights`: its metadata's, else its
// first convolution's (torchvision names); 0 when the file does not say.
int weights_input_channels(const models::WeightFile& weights) {
  if (weights.metadata) return static_cast<int>(weights.metadata->config.in_channels);
  for (const char* first_conv : {"conv1.weight", "features.0.weight"}) {
    const auto it = weights.tensors.find(first_conv);
    if (it != weights.tensors.end() && it->second.dim() == 4)
      return static_cast<int>(it->second.size(1));
  }
  return 0;
}

// Where training starts. Fresh: from the weights file (checked against the
// data), its normalisation recorded in file_spec (spec.yaml). Resumed from a
// checkpoint: the weights file is not read; the recorded normalisation is used.
std::optional<train::InitialWeights> initial_weights(
    const nlohmann::json& spec, nlohmann::json& file_spec,
    const std::shared_ptr<const models::WeightFile>& weights, const std::string& arch,
    const std::vector<std::string>& class_names, int64_t channels) {
  if (weights) {
    train::InitialWeights initial = transfer_start(spec, weights, arch, class_names, channels);
    file_spec["weights_normalization"] = normalization_to_spec(initial.normalization);
    return initial;
  }
  if (!spec.contains("weights_normalization")) return std::nullopt;
  train::InitialWeights initial;
  initial.normalization = normalization_from_spec(spec["weights_normalization"]);
  return initial;
}

// Rank 0 adds the data's skipped-file count to summary.json and prints the end.
int finish(const TrainFlags& f, const train::FitResult& result, int64_t skipped_files, bool quiet,
           bool main_rank);

#ifdef GPULAB_WITH_OPENCV
// Image folders with transforms (or too large for memory): decode threads
// stream augmented batches; validation images are decoded once, unaugmented.
int run_streaming(const TrainFlags& f, const nlohmann::json& spec, nlohmann::json file_spec,
                  const train::TrainOptions& options, const std::string& arch,
                  const std::shared_ptr<const models::WeightFile>& weights,
                  const DataPath& data_path, const DataPath& val_path, const DataFlags& data_flags,
                  const LoaderSettings& loader, distributed::Communicator& comm) {
  const distributed::World& world = comm.world();
  const bool quiet = !options.verbose() || !world.is_main();
  const c10::Device device = core::resolve_device(
      core::parse_execution_environment(options.execution_environment()), world.local_rank);
  StreamingData data =
      plan_streaming(data_path, val_path, data_flags, loader, options.val_split(),
                     spec.value("val_limit", int64_t{0}), options.seed(), device, quiet);
  // Ranks on one machine share its cores: --loader-threads 0 gives each its
  // part, as --threads 0 does for compute.
  if (data.options.threads() == 0 && world.local_size > 1) {
    data.options.threads(
        core::resolve_threads(0, world.local_size, std::thread::hardware_concurrency()));
  }
  if (!quiet) std::printf("%s", data::format_label_counts(data.train).c_str());
  const std::optional<train::InitialWeights> initial = initial_weights(
      spec, file_spec, weights, arch, data.train.class_names, data.transforms.channels());
  if (world.is_main()) {
    core::write_file_atomic((fs::path(f.out) / "spec.yaml").string(),
                            core::json_to_yaml(file_spec));
  }
  StreamingSet set = open_streaming(data, initial ? initial->normalization : std::nullopt, quiet);
  tasks::ClassificationTask task(arch, run_model_options(spec, f.out));
  train::Trainer trainer(task, options, f.out, file_spec);
  if (initial) trainer.set_initial_weights(*initial);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  trainer.set_stop_flag(&g_stop_requested);
  trainer.set_communicator(&comm);
  train::StreamingTrainSet train_set;
  train_set.source = set.loader.get();
  train_set.class_names = data.train.class_names;
  train_set.channels = data.transforms.channels();
  train_set.height = data.transforms.height();
  train_set.width = data.transforms.width();
  train_set.normalization = set.normalization;
  train::FitResult result =
      trainer.fit(train_set, set.validation ? &*set.validation : nullptr, f.resume);
  // Each rank decoded its share of the training files (and all of the
  // validation files); with shuffling a bad file may fall to several ranks
  // over the epochs, so the job's count is of the union of their sets.
  int64_t skipped_training = set.loader->skipped_files();
  if (world.is_distributed() && set.loader->may_drop_samples()) {
    torch::Tensor bad = torch::zeros({set.loader->size()}, torch::kInt32);
    for (int64_t row : set.loader->skipped_samples()) bad[row] = 1;
    std::vector<torch::Tensor> merged = {bad.to(device)};
    comm.all_reduce_sum(merged);
    skipped_training = merged[0].gt(0).sum().item<int64_t>();
  }
  return finish(
      f, result,
      skipped_training + set.skipped_validation + data_path.missing_files + val_path.missing_files,
      quiet, world.is_main());
}
#endif

// This process's command line, to start it again as the ranks of a job.
std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  GPULAB_CHECK(!args.empty(), ErrorKind::kInternal, "cannot read /proc/self/cmdline");
  args[0] = fs::read_symlink("/proc/self/exe").string();
  return args;
}

// --env multi-gpu from a plain shell: start one rank per GPU of this machine,
// each running this same command as --env parallel.
int spawn_multi_gpu_ranks() {
  const int gpus = core::cuda_device_count();
  core::resolve_device(core::ExecutionEnvironment::kMultiGpu);  // fails clearly with no GPU
  std::vector<std::string> command = own_command_line();
  command.push_back("--env");
  command.push_back("parallel");
  const distributed::LaunchResult result = distributed::launch_local(command, distributed::LaunchOptions(gpus));
  if (result.exit_code != 0 && result.failed_rank >= 0) {
    std::fprintf(stderr, "gpulab: %s\n", result.headline(gpus).c_str());
  }
  return result.exit_code;
}

int run_rank(const TrainFlags& f, const CLI::App& cmd, std::unique_ptr<distributed::Communicator>& comm);

// A rank of a launcher (gpulab launch, mpirun, srun, torchrun) run without
// --env parallel would train alone, every rank into the same RUN_DIR.
void refuse_launcher_ranks(const std::string& env) {
  distributed::World world;
  try {
    world = distributed::World::from_environment();
  } catch (const Error&) {
    return;  // stray or partial variables: --env parallel reports them
  }
  const std::string by = world.launcher == "slurm" ? "srun (SLURM_PROCID, SLURM_NTASKS)"
                         : world.launcher == "mpi"
                             ? "mpirun (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE)"
                             : "gpulab launch or torchrun (RANK, WORLD_SIZE)";
  GPULAB_CHECK(!world.is_distributed(), ErrorKind::kInvalidArgument,
               "this process is rank {} of {} started by {}, but --env is '{}': each rank would "
               "train alone into the same RUN_DIR; add --env parallel to train them as one job",
               world.rank, world.size, by, env);
}

int run_train(const TrainFlags& given, const CLI::App& cmd) {
  TrainFlags f = given;
  // A launcher restarting the world after a failure: continue the run.
  const char* restart = std::getenv("GPULAB_RESTART_COUNT");
  if (restart != nullptr && std::atoi(restart) > 0 && fs::exists(fs::path(f.out) / "spec.yaml")) {
    f.resume = true;
  }
  std::unique_ptr<distributed::Communicator> comm;
  try {
    return run_rank(f, cmd, comm);
  } catch (const distributed::PeerLostError&) {
    throw;  // another rank's failure, already named
  } catch (const std::exception& e) {
    // The other ranks' errors then name this rank and its reason.
    if (comm) comm->announce_failure(e.what());
    throw;
  }
}

int run_rank(const TrainFlags& f, const CLI::App& cmd, std::unique_ptr<distributed::Communicator>& comm) {
  nlohmann::json spec = build_spec(f, cmd);
  GPULAB_CHECK(spec.contains("data") && !spec["data"].get<std::string>().empty(),
               ErrorKind::kInvalidArgument,
               "train needs --data PATH (an IDX folder or an image folder)");
  const std::string task_name = spec["task"].get<std::string>();
  GPULAB_CHECK(task_name == "classify", ErrorKind::kUnavailable,
               "--task {} is not available in this version of gpulab yet; valid now: classify",
               task_name);
  // Weights to start from: they may name the architecture and its options. A
  // run resumed from a checkpoint has every weight, and spec.yaml what the
  // file resolved (architecture, options, normalisation): the file is not read.
  const bool from_checkpoint = f.resume && has_checkpoint(f.out);
  std::shared_ptr<const models::WeightFile> weights;
  if (spec.contains("weights") && !(from_checkpoint && spec.contains("weights_normalization"))) {
    weights = std::make_shared<models::WeightFile>(
        models::read_weight_file(spec["weights"].get<std::string>()));
    resolve_model_from_weights(spec, *weights);
  }
  GPULAB_CHECK(spec.contains("weights") || spec.value("num_classes", int64_t{0}) <= 0,
               ErrorKind::kInvalidArgument,
               "--num-classes replaces the classifier head of --weights; without --weights the "
               "network has one output per class of the data (choose them with --classes)");
  if (!spec.contains("model")) spec["model"] = "basic_cnn";

  train::TrainOptions options;
  options.apply_json(spec["options"], f.config.empty() ? "flags" : f.config);
  options.validate();
  // The options as resolved, every default filled in.
  spec["options"] = options.to_json();
  // Fail on an unknown model before any data is read.
  const std::string arch = models::resolve_model_name(spec["model"].get<std::string>());
  spec["model"] = arch;
  // Before anything in RUN_DIR is rewritten: the checkpoint's optimizer needs its rules.
  if (from_checkpoint) check_resume_rules(f.out, options);
  // Everything that can be checked without data is checked before RUN_DIR is made.
  const auto env = core::parse_execution_environment(options.execution_environment());
  const bool data_parallel =
      env == core::ExecutionEnvironment::kParallel || env == core::ExecutionEnvironment::kMultiGpu;
  if (!data_parallel) refuse_launcher_ranks(options.execution_environment());
  const distributed::World world = data_parallel ? distributed::World::from_environment() : distributed::World{};
  if (env == core::ExecutionEnvironment::kMultiGpu && !world.is_distributed()) {
    return spawn_multi_gpu_ranks();
  }
  const c10::Device device = core::resolve_device(env, world.local_rank);
  comm = distributed::connect(world, device,
                       distributed::CommunicatorOptions()
                           .backend(options.dist_backend())
                           .timeout_seconds(options.dist_timeout()));
  // Rank 0 alone makes and writes RUN_DIR; the others wait until it exists.
  if (world.is_main()) check_run_dir(f.out, f.resume);
  // The archive trained as the network lives in RUN_DIR: the run must not
  // depend on a file elsewhere.
  if (arch == "torchscript" && weights) {
    const std::string archive = spec["model_options"].value("file", std::string());
    if (world.is_main()) keep_archive_in_run(archive, f.out);
    spec["model_options"]["file"] = kRunArchive;
  }
  comm->barrier();

  nlohmann::json file_spec = {{"format_version", kSpecFormatVersion},
                              {"gpulab_version", GPULAB_VERSION},
                              {"command", "train"},
                              {"seed", options.seed()}};
  for (auto it = spec.begin(); it != spec.end(); ++it) file_spec[it.key()] = it.value();
  const bool quiet = !options.verbose() || !world.is_main();
  const LoaderSettings loader = loader_settings(spec["data_options"]);
  DataFlags data_flags = data_flags_from_spec(spec["data_options"]);
  data_flags.max_pixels = loader.max_pixels;
  // Images are converted to the channels the weights expect (grey data for
  // ImageNet weights becomes RGB), unless --channels says otherwise.
  if (weights && data_flags.channels == 0) {
    data_flags.channels = weights_input_channels(*weights);
    // Recorded: a run resumed from a checkpoint reads no weights file.
    if (data_flags.channels > 0) file_spec["data_options"]["channels"] = data_flags.channels;
  }
  // Remote data is fetched once, here; the loaders read its local view, and
  // messages, spec.yaml and the model's metadata show the URL, redacted.
  const DataPath data_path = resolve_data_path(spec["data"].get<std::string>(), data_flags, quiet);
  const std::string val_source = spec.value("val_data", std::string());
  const DataPath val_path =
      val_source.empty() ? DataPath{} : resolve_data_path(val_source, data_flags, quiet);
  file_spec["data"] = data_path.source;
  if (!val_source.empty()) file_spec["val_data"] = val_path.source;
#ifdef GPULAB_WITH_OPENCV
  if (use_streaming(data_path.local, data_flags, loader)) {
    return run_streaming(f, spec, file_spec, options, arch, weights, data_path, val_path,
                         data_flags, loader, *comm);
  }
#else
  GPULAB_CHECK(loader.transforms.empty() && loader.loader != "stream", ErrorKind::kUnavailable,
               "transforms and the streaming loader need OpenCV; this build has none");
#endif
  int64_t skipped_files = 0;
  data::Dataset train_data = load_classification_data(data_path, data_flags, data::IdxSplit::kTrain,
                                                      "Training", quiet, &skipped_files);
  std::optional<data::Dataset> val_data;
  if (!val_source.empty()) {
    DataFlags val_flags = data_flags;
    val_flags.limit = spec.value("val_limit", int64_t{0});
    val_flags.per_class = 0;
    // Same decoded size and channels as the training images.
    val_flags.image_size = fmt::format("{}x{}", train_data.height(), train_data.width());
    val_flags.channels = static_cast<int>(train_data.channels());
    val_data =
        load_classification_data(val_path, val_flags, data::IdxSplit::kTest, "Validation", quiet);
    GPULAB_CHECK(val_data->class_names == train_data.class_names, ErrorKind::kInvalidArgument,
                 "validation data '{}' has classes [{}] but the training data has [{}]",
                 val_path.source, fmt::join(val_data->class_names, ", "),
                 fmt::join(train_data.class_names, ", "));
  } else if (options.val_split() > 0) {
    auto parts = data::split_each_label(train_data, options.val_split(), options.seed());
    val_data = std::move(parts.first);
    train_data = std::move(parts.second);
    if (!quiet) {
      std::printf("Held out %lld images (%.0f%% of each label) for validation\n",
                  static_cast<long long>(val_data->size()), 100 * options.val_split());
    }
  }
  if (!quiet) std::printf("%s", data::format_label_counts(train_data).c_str());

  const std::optional<train::InitialWeights> initial = initial_weights(
      spec, file_spec, weights, arch, train_data.class_names, train_data.channels());
  // On --resume this records flags that changed (e.g. more --epochs).
  if (world.is_main()) {
    core::write_file_atomic((fs::path(f.out) / "spec.yaml").string(),
                            core::json_to_yaml(file_spec));
  }

  tasks::ClassificationTask task(arch, run_model_options(spec, f.out));
  train::Trainer trainer(task, options, f.out, file_spec);
  if (initial) trainer.set_initial_weights(*initial);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  trainer.set_stop_flag(&g_stop_requested);
  trainer.set_communicator(comm.get());
  train::FitResult result = trainer.fit(train_data, val_data ? &*val_data : nullptr, f.resume);
  return finish(f, result, skipped_files + data_path.missing_files + val_path.missing_files, quiet,
                world.is_main());
}

int finish(const TrainFlags& f, const train::FitResult& result, int64_t skipped_files, bool quiet,
           bool main_rank) {
  // The trainer knows nothing of files; the data's skipped count joins its summary.
  if (main_rank) {
    const std::string summary_path = (fs::path(f.out) / "summary.json").string();
    nlohmann::json summary = nlohmann::json::parse(core::read_file(summary_path));
    summary["skipped_files"] = skipped_files;
    core::write_file_atomic(summary_path, summary.dump(2) + "\n");
  }
  if (!quiet) {
    if (skipped_files > 0) {
      std::printf("Skipped %lld undecodable files (--skip-bad-files)\n",
                  static_cast<long long>(skipped_files));
    }
    std::printf("Waiting for data: %.1f%% of the training time\n", 100 * result.data_wait_share);
    std::printf("Stopped: %s after %lld iterations (%s); %.0f images/s on %s\n",
                result.stop_reason.c_str(), static_cast<long long>(result.iterations),
                core::format_hms(result.wall_seconds).c_str(), result.images_per_second,
                result.device.c_str());
    if (result.validation_accuracy) {
      std::printf("Validation accuracy %.2f%%, loss %.4f\n", 100 * *result.validation_accuracy,
                  *result.validation_loss);
    }
    std::printf("Model: %s\n", result.model_path.c_str());
  }
  if (result.stop_reason == "interrupted") {
    if (main_rank) {
      std::fprintf(stderr, "gpulab: interrupted; continue with: gpulab train --out %s --resume\n",
                   f.out.c_str());
    }
    return 1;
  }
  return 0;
}

}  // namespace

Action add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train",
                                 "Train a network; writes RUN_DIR (spec, history, "
                                 "checkpoints, model, summary)");
  auto f = std::make_shared<TrainFlags>();
  cmd->add_option("--data", f->data,
                  "IDX folder (train-* files), image folder (one sub-folder per class), "
                  "s3://BUCKET/PREFIX or an http(s) URL list (.txt)")
      ->group("Run");
  cmd->add_option("--model", f->model,
                  "Network: " + fmt::format("{}", fmt::join(models::model_names(), ", ")) +
                      " (default basic_cnn)")
      ->group("Run");
  cmd->add_option("--out", f->out, "Run folder to create (RUN_DIR)")->required()->group("Run");
  cmd->add_option("--task", f->task, "classify (default)")->group("Run");
  cmd->add_option("--val-data", f->val_data, "Validation data (IDX folders: the t10k-* files)")
      ->group("Run");
  cmd->add_option("--val-limit", f->val_limit, "Use only the first N validation images")
      ->group("Run");
  cmd->add_option("--weights", f->weights,
                  "Start from these weights: a gpulab model file, safetensors with PyTorch names, "
                  "TorchScript (.pt) or MatConvNet (.mat)")
      ->group("Transfer learning");
  cmd->add_option("--num-classes", f->num_classes,
                  "With --weights: replace the classifier head (fc / classifier.6) by a new one "
                  "for N classes (N = the data's class count)")
      ->group("Transfer learning");
  cmd->add_option("--freeze", f->freeze,
                  "Freeze parameters matching this glob, e.g. 'conv1.*' (repeatable; batch-norm "
                  "statistics of frozen layers stay frozen)")
      ->group("Transfer learning");
  cmd->add_option("--learn-rate-factor", f->learn_rate_factors,
                  "PATTERN=F: multiply the learn rate of matching parameters by F, e.g. "
                  "'fc.*=20' (repeatable; the last match wins; F=0 freezes)")
      ->group("Transfer learning");
  cmd->add_flag("--resume", f->resume, "Continue RUN_DIR from its last checkpoint")->group("Run");
  cmd->add_option("--config", f->config, "YAML file of options (flags win)")->group("Run");
  cmd->add_option("--nf", f->nf, "basic_cnn: filters of the first unit (default 8)")
      ->group("Model");
  cmd->add_option("--model-option", f->model_options, "Family option KEY=VALUE (repeatable)")
      ->group("Model");
  f->data_flags.add_to(*cmd);
  f->loader_flags.add_to(*cmd);
  for (const auto& flag : train_option_flags()) {
    cmd->add_option_function<std::string>(
           flag.flag,
           [f, key = std::string(flag.key)](const std::string& v) { f->option_values[key] = v; },
           flag.help)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)  // a repeated flag: the last wins
        ->group("Training options");
  }
  cmd->add_flag("--quiet", f->quiet, "No progress table")->group("Training options");
  cmd->add_flag("--no-channels-last", f->no_channels_last, "GPU: keep NCHW layout")
      ->group("Training options");
  cmd->add_flag("--no-cuda-graphs", f->no_cuda_graphs,
                "GPU: run every step eagerly instead of replaying it as a CUDA graph")
      ->group("Training options");
  cmd->add_flag("--no-cudnn-benchmark", f->no_cudnn_benchmark,
                "GPU: use cuDNN's heuristic algorithms instead of timing them once per shape")
      ->group("Training options");
  cmd->add_flag("--scale-with-workers", f->scale_with_workers,
                "multi-gpu/parallel: multiply batch size and learn rate by the number of ranks")
      ->group("Training options");
  cmd->add_flag("--sync-batchnorm", f->sync_batchnorm,
                "multi-gpu/parallel: batch-norm statistics of the global mini-batch, not each "
                "rank's slice")
      ->group("Training options");
  return [f, cmd]() { return run_train(*f, *cmd); };
}

}  // namespace gpulab::app
