// A TorchScript archive (torch.jit.script/trace + save in Python, or gpulab
// export) used as a gpulab network, whole or as a frozen feature extractor.
#pragma once

#include <memory>
#include <string>

#include <torch/nn/modules/linear.h>

#include "gpulab/models/network.h"

namespace torch::jit {
struct Module;
}

namespace gpulab::models {

// The archive's parameters and buffers appear as "backbone.<their names>", so
// optimizers, freezing, checkpoints and model files work as for every family;
// the model file records the archive's path (gpulab train keeps a copy in
// RUN_DIR, recorded relative to the model file), which must stay readable.
// config.options: {"file": path (required), "feature_extractor": false}.
// Whole model: input [N, C, H, W], its output must be [N, num_classes].
// Feature extractor: the archive is frozen (its parameters and batch-norm
// statistics; it always runs in eval mode), its output is flattened to
// features and a new linear layer "head" maps them to num_classes.
// Each of the archive's submodules appears as a module whose train/eval mode
// is the submodule's: a batch-norm layer kept in eval mode (its parameters
// frozen, train::set_training_mode) keeps its running statistics.
class TorchScriptNetwork : public Network {
 public:
  explicit TorchScriptNetwork(const ModelConfig& config);
  ~TorchScriptNetwork() override;
  torch::Tensor forward(torch::Tensor x) override;
  void train(bool on = true) override;

 private:
  std::unique_ptr<torch::jit::Module> script_;
  bool feature_extractor_ = false;
  torch::nn::Linear head_{nullptr};
};

// Runs `script` in eval mode without gradients on a zero batch of `input`'s
// [1, in_channels, height, width] and returns the output. Throws
// Error(kInvalidArgument) naming `file` and the archive's own message when it
// does not take that input.
at::Tensor run_torchscript_probe(torch::jit::Module& script, const std::string& file,
                                 const ModelConfig& input);

}  // namespace gpulab::models
