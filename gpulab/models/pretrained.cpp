// Imported weights -> registered networks.
#include "gpulab/models/pretrained.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/torchscript_file.h"
#include "gpulab/models/torchscript_network.h"
#include "gpulab/models/transformer_net.h"

namespace gpulab::models {
namespace {

// torchvision's preprocessing at the input `options` asks for.
ModelMetadata imported_metadata(const std::string& arch, int64_t num_classes,
                                const PretrainedOptions& options) {
  ModelMetadata m = torchvision_metadata(arch, num_classes);
  ModelConfig& c = m.config;
  if (options.channels() > 0) c.in_channels = options.channels();
  if (options.height() > 0) c.height = options.height();
  if (options.width() > 0) c.width = options.width();
  if (c.in_channels != 3) {
    m.mean.assign(static_cast<size_t>(c.in_channels), 0.0);
    m.std.assign(static_cast<size_t>(c.in_channels), 1.0);
  }
  return m;
}

// A file that records its input size keeps it.
void check_recorded_input(const ModelMetadata& m, const PretrainedOptions& options,
                          const std::string& path) {
  const ModelConfig& c = m.config;
  const bool differs = (options.channels() > 0 && options.channels() != c.in_channels) ||
                       (options.height() > 0 && options.height() != c.height) ||
                       (options.width() > 0 && options.width() != c.width);
  GPULAB_CHECK(!differs, ErrorKind::kInvalidArgument,
               "'{}' records its input as {}x{}x{} (channels x height x width); an input size "
               "is given only for files that record none (plain safetensors, TorchScript "
               "without gpulab.json)",
               path, c.in_channels, c.height, c.width);
}

// The kernel of a ResNet stem in `tensors` (7: torchvision's 7x7/2 stem with
// max-pool, 3: gpulab's small_input stem), 0 when there is no ResNet stem.
int64_t resnet_stem_kernel(const std::string& arch,
                           const std::map<std::string, torch::Tensor>& tensors) {
  if (arch.rfind("resnet", 0) != 0) return 0;
  const auto file = tensors.find("conv1.weight");
  if (file == tensors.end() || file->second.dim() != 4) return 0;
  const int64_t k = file->second.size(3);
  return k == 7 || k == 3 ? k : 0;
}

// torchvision's ResNets have a 7x7 stem; gpulab builds a 3x3 one for images
// under 64 pixels unless told (resnet.h). suggest_option: the command takes
// --model-option (train), so the message suggests the one that fixes it.
void check_resnet_stem(const Network& network, const std::string& arch,
                       const std::map<std::string, torch::Tensor>& tensors, const std::string& path,
                       bool suggest_option) {
  const int64_t k = resnet_stem_kernel(arch, tensors);
  const auto model = state_dict(network);
  const auto built = model.find("conv1.weight");
  if (k == 0 || built == model.end() || tensors.at("conv1.weight").sizes() == built->second.sizes())
    return;
  GPULAB_CHECK(k == built->second.size(3), ErrorKind::kInvalidArgument,
               "'{}' has a {}x{} ResNet stem (conv1.weight {}) but the {} built here has {}x{} "
               "({}){}",
               path, k, k, fmt::join(tensors.at("conv1.weight").sizes(), "x"), arch,
               built->second.size(3), built->second.size(3),
               k == 7 ? "for images under 64 pixels" : "for images of 64 pixels or more",
               suggest_option ? fmt::format("; add `model_options` small_input={} to build the "
                                            "file's stem",
                                            k == 7 ? "false" : "true")
                              : std::string());
}

// `name` is the module path `module` or a tensor or module inside it.
bool is_under(const std::string& name, const std::string& module) {
  return name.size() > module.size() && name.compare(0, module.size(), module) == 0 &&
         name[module.size()] == '.';
}

// Whether `weights` give only the family's `encoder` (registry encoder_name):
// every tensor is inside it, or the file is a model file of a network trained
// with {"encoder_only": true} (the rest of its tensors never trained).
bool holds_only(const WeightFile& weights, const std::string& encoder) {
  if (encoder.empty() || weights.tensors.empty()) return false;
  const nlohmann::json* options = weights.metadata ? &weights.metadata->config.options : nullptr;
  if (options && options->is_object() && options->value("encoder_only", false)) return true;
  return std::all_of(weights.tensors.begin(), weights.tensors.end(),
                     [&encoder](const auto& kv) { return is_under(kv.first, encoder); });
}

}  // namespace

std::string resolve_weights_arch(const std::string& requested, const WeightFile& weights) {
  const std::string named = weights.metadata ? weights.metadata->config.arch : std::string();
  if (requested.empty()) {
    GPULAB_CHECK(!named.empty(), ErrorKind::kInvalidArgument,
                 "'{}' ({}) does not say which network it holds; give the architecture with "
                 "`model` ARCH (valid: {})",
                 weights.path, weights.format, fmt::join(model_names(), ", "));
    return resolve_model_name(named);
  }
  const std::string arch = resolve_model_name(requested);
  if (arch == "torchscript") {
    GPULAB_CHECK(
        weights.format == "torchscript" || named == "torchscript", ErrorKind::kInvalidArgument,
        "`model` torchscript needs a TorchScript file; '{}' is {}", weights.path, weights.format);
    return arch;
  }
  GPULAB_CHECK(named.empty() || resolve_model_name(named) == arch, ErrorKind::kInvalidArgument,
               "'{}' holds a {} network but `model` is {}", weights.path, named, arch);
  return arch;
}

ModelMetadata torchvision_metadata(const std::string& arch, int64_t num_classes) {
  ModelMetadata m;
  m.config.arch = arch;
  m.config.num_classes = num_classes;
  m.config.in_channels = 3;
  m.config.height = m.config.width = 224;
  m.mean = {0.485, 0.456, 0.406};
  m.std = {0.229, 0.224, 0.225};
  if (arch == "erfnet") {  // the reference's input_transform: Resize, ToTensor
    m.mean = {0.0, 0.0, 0.0};
    m.std = {1.0, 1.0, 1.0};
  }
  if (arch == "transformer_net") {  // pytorch/examples' ToTensor() * 255: 0-255 pixels
    m.mean = {0.0, 0.0, 0.0};
    m.std = {1.0 / 255, 1.0 / 255, 1.0 / 255};
  }
  m.labels = labels_json({}, num_classes);
  // A style network takes each image at its own size and outputs an image;
  // segmentation networks keep the input size (a multiple of 8 or 16, the
  // files record none) and output a label map.
  if (arch == "transformer_net") {
    m.output = OutputKind::kImage;
    m.fixed_input_size = false;
    return m;
  }
  if (arch == "erfnet" || arch == "deeplabv3plus") m.output = OutputKind::kLabelMap;
  return m;
}

int64_t head_classes(const WeightFile& weights, const std::string& arch) {
  for (const std::string& head : head_names(arch)) {
    const auto bias = weights.tensors.find(head + ".bias");
    if (bias != weights.tensors.end() && bias->second.dim() == 1) return bias->second.size(0);
    const auto weight = weights.tensors.find(head + ".weight");
    if (weight != weights.tensors.end() && (weight->second.dim() == 2 || weight->second.dim() == 4))
      return weight->second.size(0);
  }
  return 0;
}

// A TorchScript archive run as it is; its metadata is gpulab export's, else
// torchvision's preprocessing with the class count its output has.
LoadedModel load_torchscript_model(const WeightFile& weights, const PretrainedOptions& options) {
  LoadedModel loaded;
  if (weights.metadata) {
    check_recorded_input(*weights.metadata, options, weights.path);
    loaded.metadata = *weights.metadata;
  } else {
    const ModelConfig input = imported_metadata("torchscript", 1, options).config;
    torch::jit::Module script = load_torchscript_file(weights.path);
    const auto out = run_torchscript_probe(script, weights.path, input);
    GPULAB_CHECK(out.dim() == 2, ErrorKind::kInvalidArgument,
                 "TorchScript file '{}' outputs [{}], not [N, classes] logits", weights.path,
                 fmt::join(out.sizes(), ", "));
    loaded.metadata = imported_metadata("torchscript", out.size(1), options);
  }
  ModelConfig& c = loaded.metadata.config;
  c.arch = "torchscript";
  c.options = {{"file", std::filesystem::absolute(weights.path).string()}};
  loaded.network = create_model(c);
  loaded.network->eval();
  return loaded;
}

LoadedModel load_pretrained(const std::string& requested_arch, const std::string& path,
                            const PretrainedOptions& options) {
  const WeightFile weights = read_weight_file(path);
  const std::string arch = resolve_weights_arch(requested_arch, weights);
  if (arch == "torchscript" && weights.format == "gpulab") {
    // A trained TorchScript network: its model file names the archive.
    check_recorded_input(*weights.metadata, options, path);
    return load_model_file(path);
  }
  if (arch == "torchscript") return load_torchscript_model(weights, options);
  LoadedModel loaded;
  if (weights.metadata) {
    check_recorded_input(*weights.metadata, options, path);
    loaded.metadata = *weights.metadata;
  } else {
    // transformer_net has no head; its num_classes is unused.
    const int64_t classes =
        arch == "transformer_net" ? kTransformerNetChannels : head_classes(weights, arch);
    GPULAB_CHECK(classes > 0, ErrorKind::kCorruptData,
                 "'{}' has no tensor '{}.weight' (the {} classifier head) of rank 2 or 4; is it "
                 "a {} network?",
                 path, head_name(arch), arch, arch);
    loaded.metadata = imported_metadata(arch, classes, options);
  }
  ModelConfig& c = loaded.metadata.config;
  c.arch = arch;
  // A file that says nothing of its stem has the one its tensors have,
  // whatever the input size (predict and export have no flag to choose it).
  const int64_t stem = resnet_stem_kernel(arch, weights.tensors);
  if (!weights.metadata && stem != 0 && !c.options.contains("small_input"))
    c.options["small_input"] = stem == 3;
  loaded.network = create_model(c);
  check_resnet_stem(*loaded.network, arch, weights.tensors, path, /*suggest_option=*/false);
  load_state_dict(*loaded.network,
                  arch == "transformer_net" ? drop_legacy_instance_norm_stats(weights.tensors)
                                            : weights.tensors,
                  path);
  loaded.network->eval();
  return loaded;
}

TransferPlan plan_transfer(const Network& network, const std::string& arch,
                           const WeightFile& weights, bool replace_head) {
  TransferPlan plan;
  const std::string encoder = encoder_name(arch);
  plan.encoder_only = holds_only(weights, encoder);
  std::vector<std::string> fresh;
  if (replace_head) fresh = head_names(arch);
  if (plan.encoder_only) {
    for (const auto& child : network.named_children()) {
      if (child.key() != encoder) fresh.push_back(child.key());
    }
  }
  for (const std::string& path : fresh) {
    const bool inside_another = std::any_of(
        fresh.begin(), fresh.end(), [&](const std::string& o) { return is_under(path, o); });
    if (!inside_another) plan.fresh.push_back(path);
  }
  auto is_fresh = [&plan](const std::string& name) {
    return std::any_of(plan.fresh.begin(), plan.fresh.end(),
                       [&name](const std::string& path) { return is_under(name, path); });
  };
  for (const auto& [name, tensor] : weights.tensors) {
    if (!is_fresh(name)) plan.tensors[name] = tensor;
  }
  // The fresh modules' own tensors complete the set, so load_state_dict
  // reports only what is wrong outside them.
  for (const auto& [name, tensor] : state_dict(network)) {
    if (is_fresh(name)) plan.tensors[name] = tensor.detach().clone();
  }
  if (arch == "transformer_net") plan.tensors = drop_legacy_instance_norm_stats(plan.tensors);
  return plan;
}

void load_weights_for_transfer(Network& network, const std::string& arch, const WeightFile& weights,
                               bool replace_head) {
  check_resnet_stem(network, arch, weights.tensors, weights.path, /*suggest_option=*/true);
  load_state_dict(network, plan_transfer(network, arch, weights, replace_head).tensors,
                  weights.path);
}

}  // namespace gpulab::models
