// gpulab train's run spec from flags, a --config file and a resumed spec.yaml.
#include "apps/gpulab/train_spec.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "gpulab/core/config_file.h"
#include "gpulab/core/error.h"
#include "gpulab/data/data_options.h"

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

// Spec keys the command itself handles; every other key is a TrainOptions key.
const std::vector<std::string> kRunKeys = {
    "task",          "data",         "val_data", "val_limit",   "model",
    "model_options", "data_options", "weights",  "num_classes", "weights_normalization",
    "task_options"};

const std::vector<TrainOptionFlag> kOptionFlags = {
    {"--solver", "solver", "sgdm | adam | rmsprop (default sgdm)"},
    {"--learn-rate", "learn_rate", "Initial learn rate (default 0.01)"},
    {"--momentum", "momentum", "sgdm momentum (default 0.9)"},
    {"--beta1", "beta1", "adam gradient decay factor (default 0.9)"},
    {"--beta2", "beta2", "adam squared gradient decay factor (default 0.999)"},
    {"--rmsprop-decay", "rmsprop_decay", "rmsprop squared gradient decay factor (default 0.9)"},
    {"--epsilon", "epsilon", "adam/rmsprop denominator offset (default 1e-8)"},
    {"--l2-regularization", "l2_regularization", "L2 weight decay (default 1e-4)"},
    {"--lr-schedule", "lr_schedule", "none | piecewise | poly | cosine (default none)"},
    {"--lr-drop-factor", "lr_drop_factor", "piecewise: multiply the rate by F (default 0.1)"},
    {"--lr-drop-period", "lr_drop_period", "piecewise: every N epochs (default 10)"},
    {"--warmup-epochs", "warmup_epochs", "linear warm-up over E epochs (default 0)"},
    {"--batch-size", "batch_size", "Images per mini-batch (default 128)"},
    {"--epochs", "max_epochs", "Maximum number of epochs (default 30)"},
    {"--shuffle", "shuffle", "once | never | every-epoch (default once)"},
    {"--gradient-threshold", "gradient_threshold",
     "Clip gradients at this value (default inf = off)"},
    {"--gradient-threshold-method", "gradient_threshold_method",
     "l2norm | global-l2norm | absolute-value (default l2norm)"},
    {"--val-split", "val_split", "Hold out fraction F of each label for validation (default 0)"},
    {"--validation-frequency", "validation_frequency", "Validate every N iterations (default 50)"},
    {"--validation-patience", "validation_patience",
     "Stop after N validations without an improvement of the objective metric (default 0 = "
     "never)"},
    {"--output-network", "output_network", "last | best-validation (default last)"},
    {"--objective-metric", "objective_metric",
     "Validation metric that --validation-patience and best-validation follow (default: the "
     "task's, loss for classify)"},
    {"--checkpoint-frequency", "checkpoint_frequency", "Checkpoint every N units (default 1)"},
    {"--checkpoint-unit", "checkpoint_frequency_unit", "epoch | iteration (default epoch)"},
    {"--checkpoints-kept", "checkpoints_kept", "Checkpoints kept on disk (default 2)"},
    {"--verbose-frequency", "verbose_frequency", "Print a row every N iterations (default 50)"},
    {"--seed", "seed", "Random seed (default 0)"},
    {"--env", "execution_environment", "auto | cpu | gpu | multi-gpu | parallel (default auto)"},
    {"--threads", "threads",
     "CPU threads (default 0 = every core; a data-parallel CPU rank: cores / ranks on the node)"},
    {"--precision", "precision", "GPU: auto | bf16 | fp32 (default auto = bf16 autocast)"},
    {"--dist-backend", "dist_backend",
     "multi-gpu/parallel: auto | gloo | nccl (default auto = NCCL on GPUs, Gloo on CPUs)"},
    {"--dist-timeout", "dist_timeout",
     "multi-gpu/parallel: seconds within which a lost or hung rank fails the job (default 60)"},
    {"--bucket-cap-mb", "bucket_cap_mb", "multi-gpu/parallel: gradient bucket MiB (default 25)"},
    {"--first-bucket-cap-mb", "first_bucket_cap_mb",
     "multi-gpu/parallel: first (earliest) bucket MiB (default 1)"},
};

std::string underscored(std::string key) {
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

bool is_run_key(const std::string& key) {
  return std::find(kRunKeys.begin(), kRunKeys.end(), key) != kRunKeys.end();
}

// A training option's key for a config-file key: a flag name (`epochs`,
// `env`, `checkpoint_unit`) names its option (`max_epochs`, …), as docs/cli.md
// says; any other key is kept.
std::string option_key(std::string key) {
  std::replace(key.begin(), key.end(), '-', '_');
  for (const auto& flag : kOptionFlags) {
    std::string name = std::string(flag.flag).substr(2);
    std::replace(name.begin(), name.end(), '-', '_');
    if (name == key) return flag.key;
  }
  return key;
}

// Layers config-file keys over a spec: run keys at the top, others into options.
// A relative `weights` path is relative to the config file's folder, and is
// stored absolute (as --weights is), so a resumed run finds it from anywhere.
void merge_config(nlohmann::json& spec, const nlohmann::json& config,
                  const std::string& config_path) {
  GPULAB_CHECK(config.is_object(), ErrorKind::kInvalidArgument,
               "--config '{}' must be a mapping of option: value", config_path);
  for (auto it = config.begin(); it != config.end(); ++it) {
    const std::string key = underscored(it.key());
    if (key == "options" && it->is_object()) {
      for (auto o = it->begin(); o != it->end(); ++o)
        spec["options"][option_key(o.key())] = o.value();
    } else if (key == "data_options") {
      GPULAB_CHECK(it->is_object(), ErrorKind::kInvalidArgument,
                   "--config '{}': data_options must be a mapping of option: value", config_path);
      for (auto o = it->begin(); o != it->end(); ++o) {
        const std::string data_key = underscored(o.key());
        data::check_data_option(data_key, o.value(), "--config '" + config_path + "'");
        spec["data_options"][data_key] = o.value();
      }
    } else if (data::is_data_option(key)) {
      data::check_data_option(key, it.value(), "--config '" + config_path + "'");
      spec["data_options"][key] = it.value();
    } else if (key == "weights" && it->is_string()) {
      const fs::path weights = it->get<std::string>();
      spec[key] = weights.is_absolute()
                      ? weights.string()
                      : fs::absolute(fs::path(config_path).parent_path() / weights)
                            .lexically_normal()
                            .string();
    } else if (is_run_key(key)) {
      spec[key] = it.value();
    } else {
      spec["options"][option_key(key)] = it.value();
    }
  }
}

}  // namespace

nlohmann::json build_spec(const TrainFlags& f, const CLI::App& cmd) {
  nlohmann::json spec = {{"task", "classify"},
                         {"model_options", nlohmann::json::object()},
                         {"data_options", nlohmann::json::object()},
                         {"options", nlohmann::json::object()}};
  const std::string spec_path = (fs::path(f.out) / "spec.yaml").string();
  if (f.resume) {
    GPULAB_CHECK(fs::exists(spec_path), ErrorKind::kNotFound,
                 "--resume: '{}' has no spec.yaml; is it a gpulab run folder?", f.out);
    nlohmann::json saved = core::load_yaml_file(spec_path);
    for (const auto& key : kRunKeys) {
      if (saved.contains(key)) spec[key] = saved[key];
    }
    if (saved.contains("options")) spec["options"] = saved["options"];
  }
  if (!f.config.empty()) merge_config(spec, core::load_yaml_file(f.config), f.config);
  if (cmd.count("--data")) spec["data"] = f.data;
  if (cmd.count("--val-data")) spec["val_data"] = f.val_data;
  if (cmd.count("--val-limit")) spec["val_limit"] = f.val_limit;
  if (cmd.count("--model")) spec["model"] = f.model;
  if (cmd.count("--task")) spec["task"] = f.task;
  if (cmd.count("--weights")) spec["weights"] = fs::absolute(f.weights).string();
  if (cmd.count("--num-classes")) spec["num_classes"] = f.num_classes;
  if (!f.freeze.empty()) spec["options"]["freeze"] = f.freeze;
  if (!f.learn_rate_factors.empty()) spec["options"]["learn_rate_factors"] = f.learn_rate_factors;
  if (cmd.count("--nf")) spec["model_options"]["nf"] = f.nf;
  for (const auto& kv : f.task_options) {
    auto eq = kv.find('=');
    GPULAB_CHECK(eq != std::string::npos && eq > 0, ErrorKind::kInvalidArgument,
                 "--task-option must be KEY=VALUE, got '{}'", kv);
    spec["task_options"][kv.substr(0, eq)] = core::parse_scalar(kv.substr(eq + 1));
  }
  if (cmd.count("--class-weights")) spec["task_options"]["class_weights"] = f.class_weights;
  for (const StyleFlag& flag : style_flags()) {
    const auto it = f.style_options.find(flag.key);
    if (it == f.style_options.end()) continue;
    spec["task_options"][flag.key] = flag.is_file
                                         ? nlohmann::json(fs::absolute(it->second).string())
                                         : core::parse_scalar(it->second);
  }
  for (const auto& kv : f.model_options) {
    auto eq = kv.find('=');
    GPULAB_CHECK(eq != std::string::npos && eq > 0, ErrorKind::kInvalidArgument,
                 "--model-option must be KEY=VALUE, got '{}'", kv);
    spec["model_options"][kv.substr(0, eq)] = core::parse_scalar(kv.substr(eq + 1));
  }
  auto& d = spec["data_options"];
  f.data_flags.to_spec(d, cmd);
  f.loader_flags.to_spec(d, cmd);
  for (const auto& entry : f.loader_flags.transforms) {
    std::string flag = "--" + entry.first;
    std::replace(flag.begin(), flag.end(), '_', '-');
    data::check_data_option(entry.first, d[entry.first], flag);
  }
  for (const auto& [key, text] : f.option_values) spec["options"][key] = core::parse_scalar(text);
  if (f.quiet) spec["options"]["verbose"] = false;
  if (f.no_channels_last) spec["options"]["channels_last"] = false;
  if (f.no_cuda_graphs) spec["options"]["cuda_graphs"] = false;
  if (f.no_cudnn_benchmark) spec["options"]["cudnn_benchmark"] = false;
  if (f.scale_with_workers) spec["options"]["scale_with_workers"] = true;
  if (f.sync_batchnorm) spec["options"]["sync_batchnorm"] = true;
  return spec;
}

const std::vector<StyleFlag>& style_flags() {
  static const std::vector<StyleFlag> flags = {
      {"--style-image", "style_image", "style: the style image FILE (required)", true},
      {"--loss-network", "loss_network", "style: vgg16 (default) | vgg19", false},
      {"--loss-network-weights", "loss_network_weights",
       "style: the loss network's weights: torchvision VGG safetensors or MatConvNet "
       "imagenet-vgg-verydeep-16/19.mat (required)",
       true},
      {"--content-layers", "content_layers", "style: content layers, e.g. relu2_2 (default)",
       false},
      {"--style-layers", "style_layers",
       "style: style layers (default relu1_2,relu2_2,relu3_3,relu4_3)", false},
      {"--content-weight", "content_weight", "style: content loss weight (default 1e5)", false},
      {"--style-weight", "style_weight", "style: style loss weight (default 1e10)", false},
      {"--tv-weight", "tv_weight", "style: total-variation weight (default 0)", false},
      {"--style-size", "style_size",
       "style: the style image's shorter side in pixels (default 0: its own size)", false},
      {"--preview-image", "preview_image",
       "style: FILE stylised into RUN_DIR/previews/ at each checkpoint", true},
  };
  return flags;
}

const std::vector<TrainOptionFlag>& train_option_flags() {
  return kOptionFlags;
}

}  // namespace gpulab::app
