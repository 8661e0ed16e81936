// gpulab model files: a safetensors file whose __metadata__ describes the
// network (architecture, classes, input size, normalisation, training options).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpulab/models/network.h"

namespace gpulab::models {

// Written as __metadata__["gpulab"] (JSON); bumped when the layout changes.
// Loaders accept every version up to this one.
constexpr int kModelFormatVersion = 1;

struct ModelMetadata {
  ModelConfig config;
  std::vector<std::string> class_names;
  // Per-channel mean/std in [0, 1] pixel units; images are fed RGB.
  std::vector<double> mean;
  std::vector<double> std;
  nlohmann::json training = nlohmann::json::object();  // resolved TrainOptions
  int format_version = kModelFormatVersion;

  nlohmann::json to_json() const;
  static ModelMetadata from_json(const nlohmann::json& j, const std::string& source);
  // from_json of JSON text, e.g. __metadata__["gpulab"]; throws
  // Error(kCorruptData) naming `source` for text that is not JSON.
  static ModelMetadata parse(const std::string& text, const std::string& source);
};

struct LoadedModel {
  std::shared_ptr<Network> network;  // on CPU, eval mode
  ModelMetadata metadata;
};

// Saves weights (parameters and buffers) plus metadata, atomically. A
// TorchScript network's archive (config.options.file) in the model file's
// folder or the one above is recorded relative to the model file's folder.
void save_model_file(const std::string& path, const Network& network,
                     const ModelMetadata& metadata);

// Builds the network from the metadata and loads its weights; a relative
// TorchScript archive path is relative to the model file's folder. Throws
// Error(kCorruptData) naming the file when it is not a gpulab model file or its
// tensors do not fit the architecture.
LoadedModel load_model_file(const std::string& path);

}  // namespace gpulab::models
