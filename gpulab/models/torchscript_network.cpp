// The archive's tensors are registered (shared, not copied) in a tree of
// modules mirroring its submodules, so Module::to() and the optimizer update
// the very tensors TorchScript computes with, and a mirror's train/eval mode
// is its submodule's.
#include "gpulab/models/torchscript_network.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <map>

#include "gpulab/core/error.h"
#include "gpulab/models/torchscript_file.h"

namespace gpulab::models {
namespace {

// A submodule of the archive. Its mode follows the mirror's, so a batch-norm
// layer kept in eval mode while the rest trains (train::set_training_mode for
// frozen layers) keeps its running statistics inside the archive too.
class ScriptSubmodule : public torch::nn::Module {
 public:
  explicit ScriptSubmodule(torch::jit::Module script)
      : torch::nn::Module("TorchScriptSubmodule"), script_(std::move(script)) {}
  void train(bool on) override {
    torch::nn::Module::train(on);
    script_.train(on);
  }

 private:
  torch::jit::Module script_;  // shares the archive's submodule
};

// The module at `path` ("layer1.0.conv1") under `root`, created on demand.
torch::nn::Module& module_at(torch::nn::Module& root, const std::string& path,
                             const std::map<std::string, torch::jit::Module>& scripted,
                             std::map<std::string, std::shared_ptr<torch::nn::Module>>& made) {
  if (path.empty()) return root;
  auto it = made.find(path);
  if (it != made.end()) return *it->second;
  const auto dot = path.rfind('.');
  torch::nn::Module& parent =
      module_at(root, dot == std::string::npos ? "" : path.substr(0, dot), scripted, made);
  auto child = std::make_shared<ScriptSubmodule>(scripted.at(path));
  parent.register_module(dot == std::string::npos ? path : path.substr(dot + 1), child);
  made[path] = child;
  return *child;
}

void split_name(const std::string& full, std::string& path, std::string& leaf) {
  const auto dot = full.rfind('.');
  path = dot == std::string::npos ? "" : full.substr(0, dot);
  leaf = dot == std::string::npos ? full : full.substr(dot + 1);
}

// The last line of an error: a TorchScript interpreter error ends with the
// operation's own message after a traceback of the archive's code.
std::string last_line(const std::string& text) {
  const auto end = text.find_last_not_of(" \n");
  if (end == std::string::npos) return text;
  const auto start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start + 1));
}

}  // namespace

at::Tensor run_torchscript_probe(torch::jit::Module& script, const std::string& file,
                                 const ModelConfig& input) {
  torch::NoGradGuard no_grad;
  script.eval();
  const auto probe = torch::zeros({1, input.in_channels, input.height, input.width});
  std::string reason;
  try {
    return script.forward({probe}).toTensor();
  } catch (const c10::Error& e) {
    reason = last_line(e.what_without_backtrace());
  } catch (const std::exception& e) {
    // The interpreter rethrows an operation's error as std::runtime_error.
    reason = last_line(e.what());
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "TorchScript file '{}' does not take a [1, {}, {}, {}] image batch ({}); give the "
              "input it takes (`channels` C, `image_size` HxW)",
              file, input.in_channels, input.height, input.width, reason);
}

TorchScriptNetwork::TorchScriptNetwork(const ModelConfig& config) {
  const std::string file = config.options.value("file", std::string());
  GPULAB_CHECK(!file.empty(), ErrorKind::kInvalidArgument,
               "model 'torchscript' needs the archive: `model` torchscript with `weights` FILE.pt");
  feature_extractor_ = config.options.value("feature_extractor", false);
  script_ = std::make_unique<torch::jit::Module>(load_torchscript_file(file));
  auto backbone = register_module("backbone", std::make_shared<torch::nn::Module>("TorchScript"));
  std::map<std::string, torch::jit::Module> scripted;
  for (const auto& m : script_->named_modules()) scripted.emplace(m.name, m.value);
  std::map<std::string, std::shared_ptr<torch::nn::Module>> made;
  std::string path, leaf;
  for (const auto& p : script_->named_parameters(/*recurse=*/true)) {
    split_name(p.name, path, leaf);
    module_at(*backbone, path, scripted, made)
        .register_parameter(leaf, p.value, /*requires_grad=*/!feature_extractor_);
  }
  for (const auto& b : script_->named_buffers(/*recurse=*/true)) {
    split_name(b.name, path, leaf);
    module_at(*backbone, path, scripted, made).register_buffer(leaf, b.value);
  }

  const torch::Tensor out = run_torchscript_probe(*script_, file, config);
  if (feature_extractor_) {
    head_ = register_module("head", torch::nn::Linear(out.numel(), config.num_classes));
  } else {
    GPULAB_CHECK(out.dim() == 2 && out.size(1) == config.num_classes, ErrorKind::kInvalidArgument,
                 "TorchScript file '{}' outputs [{}] but {} classes are needed; use it as a "
                 "feature extractor with `num_classes` {}",
                 file, fmt::join(out.sizes(), ", "), config.num_classes, config.num_classes);
  }
}

TorchScriptNetwork::~TorchScriptNetwork() = default;

torch::Tensor TorchScriptNetwork::forward(torch::Tensor x) {
  auto out = script_->forward({x}).toTensor();
  return feature_extractor_ ? head_->forward(out.flatten(1)) : out;
}

void TorchScriptNetwork::train(bool on) {
  Network::train(on);
  // A frozen feature extractor keeps its batch-norm statistics too.
  script_->train(on && !feature_extractor_);
}

}  // namespace gpulab::models
