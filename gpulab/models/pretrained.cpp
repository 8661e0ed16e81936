// Imported weights -> registered networks.
#include "gpulab/models/pretrained.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/models/registry.h"

namespace gpulab::models {
namespace {}  // namespace

std::string resolve_weights_arch(const std::string& requested, const WeightFile& weights) {
  const std::string named = weights.metadata ? weights.metadata->config.arch : std::string();
  if (requested.empty()) {
    GPULAB_CHECK(!named.empty(), ErrorKind::kInvalidArgument,
                 "'{}' ({}) does not say which network it holds; give the architecture with "
                 "--model ARCH (valid: {})",
                 weights.path, weights.format, fmt::join(model_names(), ", "));
    return resolve_model_name(named);
  }
  const std::string arch = resolve_model_name(requested);
  if (arch == "torchscript") {
    GPULAB_CHECK(weights.format == "torchscript", ErrorKind::kInvalidArgument,
                 "--model torchscript needs a TorchScript file; '{}' is {}", weights.path,
                 weights.format);
    return arch;
  }
  GPULAB_CHECK(named.empty() || resolve_model_name(named) == arch, ErrorKind::kInvalidArgument,
               "'{}' holds a {} network but --model is {}", weights.path, named, arch);
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
  for (int64_t i = 0; i < num_classes; ++i) m.class_names.push_back(std::to_string(i));
  return m;
}

int64_t head_classes(const WeightFile& weights, const std::string& arch) {
  auto it = weights.tensors.find(head_name(arch) + ".weight");
  return it == weights.tensors.end() || it->second.dim() != 2 ? 0 : it->second.size(0);
}

// A TorchScript archive run as it is; its metadata is gpulab export's, else
// torchvision's preprocessing with the class count its output has.
LoadedModel load_torchscript_model(const WeightFile& weights) {
  LoadedModel loaded;
  loaded.metadata = weights.metadata ? *weights.metadata : torchvision_metadata("torchscript", 1);
  ModelConfig& c = loaded.metadata.config;
  c.arch = "torchscript";
  c.options = {{"file", std::filesystem::absolute(weights.path).string()}};
  if (!weights.metadata) {
    torch::jit::Module script = torch::jit::load(weights.path, torch::kCPU);
    script.eval();
    torch::NoGradGuard no_grad;
    const auto out =
        script.forward({torch::zeros({1, c.in_channels, c.height, c.width})}).toTensor();
    GPULAB_CHECK(out.dim() == 2, ErrorKind::kInvalidArgument,
                 "TorchScript file '{}' outputs [{}], not [N, classes] logits", weights.path,
                 fmt::join(out.sizes(), ", "));
    loaded.metadata = torchvision_metadata("torchscript", out.size(1));
    loaded.metadata.config.options = c.options;
  }
  loaded.network = create_model(loaded.metadata.config);
  loaded.network->eval();
  return loaded;
}

LoadedModel load_pretrained(const std::string& requested_arch, const std::string& path) {
  const WeightFile weights = read_weight_file(path);
  const std::string arch = resolve_weights_arch(requested_arch, weights);
  if (arch == "torchscript") return load_torchscript_model(weights);
  LoadedModel loaded;
  if (weights.metadata) {
    loaded.metadata = *weights.metadata;
  } else {
    const int64_t classes = head_classes(weights, arch);
    GPULAB_CHECK(classes > 0, ErrorKind::kCorruptData,
                 "'{}' has no tensor '{}.weight' (the {} classifier head) of rank 2; is it a {} "
                 "network?",
                 path, head_name(arch), arch, arch);
    loaded.metadata = torchvision_metadata(arch, classes);
  }
  loaded.metadata.config.arch = arch;
  loaded.network = create_model(loaded.metadata.config);
  load_state_dict(*loaded.network, weights.tensors, path);
  loaded.network->eval();
  return loaded;
}

void load_weights_for_transfer(Network& network, const std::string& arch, const WeightFile& weights,
                               bool replace_head) {
  if (!replace_head) {
    load_state_dict(network, weights.tensors, weights.path);
    return;
  }
  const std::string head = head_name(arch) + ".";
  std::map<std::string, torch::Tensor> kept;
  for (const auto& [name, tensor] : weights.tensors) {
    if (name.compare(0, head.size(), head) != 0) kept[name] = tensor;
  }
  // The fresh head's own tensors complete the set, so only a mismatch in the
  // body is reported.
  for (const auto& [name, tensor] : state_dict(network)) {
    if (name.compare(0, head.size(), head) == 0) kept[name] = tensor.detach().clone();
  }
  load_state_dict(network, kept, weights.path);
}

}  // namespace gpulab::models
