// Flags shared by the commands that read data, and --weights' input flags;
// they become a spec's data_options (data::DataOptions) under the same keys
// as in --config YAML.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/models/pretrained.h"

namespace CLI {
class App;
}

namespace gpulab::app {

struct DataFlags {
  std::string image_size;  // "HxW" or "" (first image's size)
  int channels = 0;        // 0 = the weights' or the data's (see --help)
  bool skip_bad_files = false;
  int64_t limit = 0;                 // use only the first N images (0 = all)
  std::vector<std::string> classes;  // keep only these classes (names or indices)
  int64_t per_class = 0;             // then the first N images of each (0 = all)
  std::string cache_dir;             // remote data cache ("" = the default)
  int fetch_threads = 8;             // parallel downloads

  void add_to(CLI::App& cmd);
  // The flags given on the command line into `data_options`.
  void to_spec(nlohmann::json& data_options, const CLI::App& cmd) const;
};

// predict and export with --weights: the input of weights whose file records
// none (plain safetensors, TorchScript without gpulab.json).
struct InputFlags {
  std::string image_size;  // "HxW" or "" (224x224)
  int channels = 0;        // 0 = 3

  void add_to(CLI::App& cmd);
  models::PretrainedOptions options() const;
};

}  // namespace gpulab::app
