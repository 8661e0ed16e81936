// gpulab train's run spec: the flags, a --config YAML file and, on --resume,
// the run's spec.yaml, layered into one JSON spec (flags win).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/gpulab/data_flags.h"
#include "apps/gpulab/loader_flags.h"

namespace CLI {
class App;
}

namespace gpulab::app {

// A flag that sets one TrainOptions key ("--epochs" -> "max_epochs").
struct TrainOptionFlag {
  const char* flag;
  const char* key;
  const char* help;
};

// Style transfer's flags, each setting the task option of its key.
struct StyleFlag {
  const char* flag;  // "--style-image"
  const char* key;   // "style_image"
  const char* help;
  bool is_file;  // made absolute, so a resumed run finds it
};
const std::vector<StyleFlag>& style_flags();

// Every such flag, in --help order.
const std::vector<TrainOptionFlag>& train_option_flags();

// The train command's flags as given, before they become a spec.
struct TrainFlags {
  std::string data, val_data, model, out, task = "classify", weights, config;
  int64_t val_limit = 0;
  int64_t nf = 0;
  int64_t num_classes = 0;
  std::vector<std::string> freeze, learn_rate_factors;
  std::vector<std::string> model_options;
  std::vector<std::string> task_options;  // KEY=VALUE, the task's own options
  std::string class_weights;              // segment: task option class_weights
  // style: task options from their own flags (--style-image ...), by key.
  std::map<std::string, std::string> style_options;
  bool resume = false, quiet = false, no_channels_last = false, no_cuda_graphs = false,
       no_cudnn_benchmark = false;
  bool scale_with_workers = false;
  bool sync_batchnorm = false;
  DataFlags data_flags;
  LoaderFlags loader_flags;
  std::map<std::string, std::string> option_values;  // TrainOptions key -> flag text
};

// The spec: {task, data, val_data, model, model_options, data_options,
// options, ...}. Throws Error(kNotFound) when --resume has no spec.yaml,
// Error(kInvalidArgument) for a malformed --model-option.
nlohmann::json build_spec(const TrainFlags& f, const CLI::App& cmd);

}  // namespace gpulab::app
