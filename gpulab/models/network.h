// The interface every image network implements, and its configuration.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace gpulab::models {

// What a network needs to be built: architecture name and input/output shape,
// plus family-specific options (e.g. {"nf": 8} for basic_cnn).
struct ModelConfig {
  std::string arch;
  int64_t num_classes = 10;
  int64_t in_channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  nlohmann::json options = nlohmann::json::object();

  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);
};

// A module with one image input [N, C, H, W] float32 and one output: class
// logits [N, num_classes] for classifiers.
class Network : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor input) = 0;
};

// Parameters and buffers by their dotted names (PyTorch's state_dict order).
std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);

// Copies `tensors` into the module's parameters and buffers. A missing
// batch-norm "*.num_batches_tracked" becomes 0, as in PyTorch (files written
// before PyTorch 0.4.1 lack it). Throws Error(kCorruptData) naming `source`
// and listing every other missing, and every unexpected, wrong-shape and
// wrong-dtype tensor (an integer or boolean tensor for a float parameter or
// buffer; float precisions convert, as do integer widths).
void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& source);

}  // namespace gpulab::models
