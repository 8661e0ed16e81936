// Initial weights of a run, from the spec's weights file.
#include "gpulab/train/initial_weights.h"

#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/train/run_folder.h"

namespace gpulab::train {
namespace fs = std::filesystem;
namespace {

// The head is replaced when --num-classes asks for it; a head whose class
// count differs from the data's without it is an error with the fix. A
// TorchScript archive is the network itself (models::TorchScriptNetwork loads
// it): only its normalisation is taken from here; a run's model file of one
// has its trained tensors loaded too.
InitialWeights transfer_start(const nlohmann::json& spec,
                              std::shared_ptr<const models::WeightFile> weights,
                              const std::string& arch, const data::LabelSpec& labels,
                              int64_t channels) {
  const int64_t data_classes = labels.size();
  const int64_t wanted = spec.value("num_classes", int64_t{0});
  GPULAB_CHECK(wanted <= 0 || wanted == data_classes, ErrorKind::kInvalidArgument,
               "`num_classes` {} but the training data has {} classes ({})", wanted, data_classes,
               fmt::join(labels.names, ", "));
  InitialWeights initial;
  initial.normalization = weights_normalization(*weights, arch, channels);
  if (arch == "torchscript" && weights->format == "torchscript") return initial;
  const int64_t file_classes = models::head_classes(*weights, arch);
  // A whole TorchScript network has no head of its own: its archive's output
  // is checked against the data when it is built.
  const bool headless = arch == "torchscript" && file_classes == 0;
  GPULAB_CHECK(wanted > 0 || headless || file_classes == data_classes, ErrorKind::kInvalidArgument,
               "`weights` '{}' has a {}-class head but the training data has {} classes; "
               "add `num_classes` {} to replace the head",
               weights->path, file_classes, data_classes, data_classes);
  initial.replace_head = wanted > 0;
  initial.file = std::move(weights);
  return initial;
}

}  // namespace

void resolve_model_from_weights(nlohmann::json& spec, const models::WeightFile& weights) {
  spec["model"] = models::resolve_weights_arch(spec.value("model", std::string()), weights);
  if (spec["model"] == "torchscript" && weights.format == "gpulab") {
    // A trained TorchScript network (a run's model file): the archive it names,
    // relative to the file, with its trained tensors loaded over it.
    spec["model_options"] =
        models::with_absolute_archive("torchscript", weights.metadata->config.options,
                                      fs::absolute(weights.path).parent_path().string());
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

std::optional<data::Normalization> weights_normalization(const models::WeightFile& weights,
                                                         const std::string& arch,
                                                         int64_t channels) {
  if (weights.metadata) return data::Normalization{weights.metadata->mean, weights.metadata->std};
  if (channels != 3) return std::nullopt;
  const models::ModelMetadata imagenet = models::torchvision_metadata(arch, 1);
  return data::Normalization{imagenet.mean, imagenet.std};
}

int weights_input_channels(const models::WeightFile& weights) {
  if (weights.metadata) return static_cast<int>(weights.metadata->config.in_channels);
  // torchvision's ResNets, its VGG and AlexNet, Eromera/erfnet_pytorch's ERFNet.
  for (const char* first_conv :
       {"conv1.weight", "features.0.weight", "encoder.initial_block.conv.weight"}) {
    const auto it = weights.tensors.find(first_conv);
    if (it != weights.tensors.end() && it->second.dim() == 4)
      return static_cast<int>(it->second.size(1));
  }
  return 0;
}

std::optional<InitialWeights> initial_weights(
    const nlohmann::json& spec, nlohmann::json& file_spec,
    const std::shared_ptr<const models::WeightFile>& weights, const std::string& arch,
    const data::LabelSpec& labels, int64_t channels) {
  if (weights) {
    InitialWeights initial = transfer_start(spec, weights, arch, labels, channels);
    file_spec["weights_normalization"] = normalization_to_spec(initial.normalization);
    return initial;
  }
  if (!spec.contains("weights_normalization")) return std::nullopt;
  InitialWeights initial;
  initial.normalization = normalization_from_spec(spec["weights_normalization"]);
  return initial;
}

}  // namespace gpulab::train
