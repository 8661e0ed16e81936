// gpulab model files: a safetensors file whose __metadata__ describes the
// network (task, output kind, architecture, labels, training input size,
// normalisation, training options). Version 1 files (classification only,
// before the task-generic core) still load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpulab/models/network.h"
#include "gpulab/models/output_kind.h"

namespace gpulab::models {

// Written as __metadata__["gpulab"] (JSON); bumped when the layout changes.
// Loaders accept every version up to this one.
constexpr int kModelFormatVersion = 2;

struct ModelMetadata {
  // The network; config.in_channels/height/width is the training input size.
  ModelConfig config;
  // The task that trained it (a tasks registry name) and what its output is.
  std::string task = "classify";
  OutputKind output = OutputKind::kClassScores;
  // The data's labels as data::LabelSpec JSON ({"names": [...], ...}); the
  // model layer keeps it opaque (LabelSpec belongs to the data layer).
  nlohmann::json labels = nlohmann::json::object();
  // Whether the network takes only the training input size (fully connected
  // layers) or any size (fully convolutional networks).
  bool fixed_input_size = true;
  // The task's own metadata (Task::metadata()).
  nlohmann::json task_metadata = nlohmann::json::object();
  // Per-channel mean/std in [0, 1] pixel units; images are fed RGB.
  std::vector<double> mean;
  std::vector<double> std;
  nlohmann::json training = nlohmann::json::object();  // resolved TrainOptions
  int format_version = kModelFormatVersion;

  // labels["names"]: the class names in index order (empty when none).
  std::vector<std::string> class_names() const;

  nlohmann::json to_json() const;
  static ModelMetadata from_json(const nlohmann::json& j, const std::string& source);
  // from_json of JSON text, e.g. __metadata__["gpulab"]; throws
  // Error(kCorruptData) naming `source` for text that is not JSON.
  static ModelMetadata parse(const std::string& text, const std::string& source);
};

// Label JSON (data::LabelSpec's layout) for class names; "0".."n-1" when
// `names` is empty and n > 0.
nlohmann::json labels_json(std::vector<std::string> names, int64_t n = 0);

// A TorchScript network's options with their archive (`file`) made absolute:
// a relative archive is relative to `folder` (the model file's, the weights
// file's or the run's). Other architectures' options are returned as given.
nlohmann::json with_absolute_archive(const std::string& arch, nlohmann::json options,
                                     const std::string& folder);

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
