// Model files on top of safetensors.
#include "gpulab/models/model_file.h"

#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"

namespace gpulab::models {
namespace fs = std::filesystem;
namespace {

// A TorchScript network's archive in or next to the model file's folder (a
// run's network.pt, seen from model.safetensors or checkpoints/) is recorded
// relative to that folder, so a run folder copied elsewhere keeps working.
ModelMetadata with_portable_archive(ModelMetadata m, const std::string& model_path) {
  nlohmann::json& options = m.config.options;
  if (m.config.arch != "torchscript" || !options.contains("file")) return m;
  const fs::path archive = fs::path(options["file"].get<std::string>()).lexically_normal();
  const fs::path folder = fs::absolute(model_path).lexically_normal().parent_path();
  if (!archive.is_absolute()) return m;
  if (archive.parent_path() == folder || archive.parent_path() == folder.parent_path())
    options["file"] = archive.lexically_relative(folder).string();
  return m;
}

// The archive of a TorchScript network as a path to open: a relative one is
// relative to the model file's folder.
void resolve_archive(ModelConfig& config, const std::string& model_path) {
  config.options = with_absolute_archive(config.arch, std::move(config.options),
                                         fs::absolute(model_path).parent_path().string());
}

}  // namespace

nlohmann::json with_absolute_archive(const std::string& arch, nlohmann::json options,
                                     const std::string& folder) {
  if (arch != "torchscript" || !options.is_object() || !options.contains("file")) return options;
  const fs::path archive = options["file"].get<std::string>();
  if (archive.is_relative()) {
    options["file"] = (fs::absolute(folder) / archive).lexically_normal().string();
  }
  return options;
}

nlohmann::json labels_json(std::vector<std::string> names, int64_t n) {
  if (names.empty()) {
    for (int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
  }
  return {{"names", names}};
}

std::vector<std::string> ModelMetadata::class_names() const {
  if (!labels.is_object() || !labels.contains("names")) return {};
  return labels.at("names").get<std::vector<std::string>>();
}

nlohmann::json ModelMetadata::to_json() const {
  return {{"format_version", kModelFormatVersion},
          {"task", task},
          {"output", to_string(output)},
          {"model", config.to_json()},
          {"labels", labels},
          {"normalization", {{"mean", mean}, {"std", std}, {"color_order", "RGB"}}},
          {"train_size", {config.in_channels, config.height, config.width}},
          {"fixed_input_size", fixed_input_size},
          {"task_metadata", task_metadata},
          {"training", training}};
}

ModelMetadata ModelMetadata::from_json(const nlohmann::json& j, const std::string& source) {
  try {
    ModelMetadata m;
    m.format_version = j.at("format_version").get<int>();
    GPULAB_CHECK(m.format_version >= 1 && m.format_version <= kModelFormatVersion,
                 ErrorKind::kCorruptData,
                 "'{}' has model format version {}; this gpulab reads up to {} — "
                 "upgrade gpulab",
                 source, m.format_version, kModelFormatVersion);
    m.config = ModelConfig::from_json(j.at("model"));
    if (m.format_version == 1) {
      // Version 1: classification, class names only, the input size fixed.
      m.labels = labels_json(j.at("class_names").get<std::vector<std::string>>());
    } else {
      m.task = j.at("task").get<std::string>();
      m.output = parse_output_kind(j.at("output").get<std::string>(), source);
      m.labels = j.at("labels");
      m.fixed_input_size = j.at("fixed_input_size").get<bool>();
      m.task_metadata = j.value("task_metadata", nlohmann::json::object());
    }
    m.mean = j.at("normalization").at("mean").get<std::vector<double>>();
    m.std = j.at("normalization").at("std").get<std::vector<double>>();
    m.training = j.value("training", nlohmann::json::object());
    return m;
  } catch (const nlohmann::json::exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "'{}': malformed gpulab metadata ({})", source, e.what());
  }
}

ModelMetadata ModelMetadata::parse(const std::string& text, const std::string& source) {
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "'{}': gpulab metadata is not valid JSON ({})", source,
                e.what());
  }
  return from_json(meta, source);
}

void save_model_file(const std::string& path, const Network& network,
                     const ModelMetadata& metadata) {
  SafetensorsContent content;
  content.tensors = state_dict(network);
  content.metadata["format"] = "gpulab-model";
  content.metadata["gpulab"] = with_portable_archive(metadata, path).to_json().dump();
  save_safetensors(path, content);
}

LoadedModel load_model_file(const std::string& path) {
  SafetensorsContent content = load_safetensors(path);
  auto it = content.metadata.find("gpulab");
  GPULAB_CHECK(it != content.metadata.end(), ErrorKind::kCorruptData,
               "'{}' is a safetensors file without gpulab metadata; to use plain "
               "weights give the architecture with `model` ARCH and `weights` FILE",
               path);
  LoadedModel loaded;
  loaded.metadata = ModelMetadata::parse(it->second, path);
  resolve_archive(loaded.metadata.config, path);
  loaded.network = create_model(loaded.metadata.config);
  load_state_dict(*loaded.network, content.tensors, path);
  loaded.network->eval();
  return loaded;
}

}  // namespace gpulab::models
