// The model registry: a name -> factory table, built on first use.
#include "gpulab/models/registry.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>

#include "gpulab/core/error.h"
#include "gpulab/models/alexnet.h"
#include "gpulab/models/basic_cnn.h"
#include "gpulab/models/lenet5.h"
#include "gpulab/models/resnet.h"
#include "gpulab/models/torchscript_network.h"
#include "gpulab/models/vgg.h"

namespace gpulab::models {
namespace {

using Factory = std::function<std::shared_ptr<Network>(const ModelConfig&)>;

template <typename Family>
Factory family(nlohmann::json defaults) {
  return [defaults](const ModelConfig& c) {
    ModelConfig with_defaults = c;
    for (auto it = defaults.begin(); it != defaults.end(); ++it) {
      if (!with_defaults.options.contains(it.key())) with_defaults.options[it.key()] = it.value();
    }
    return std::make_shared<Family>(with_defaults);
  };
}

struct Entry {
  Factory factory;
  std::string head;  // module path of the last linear layer
};

std::map<std::string, Entry> build_registry() {
  std::map<std::string, Entry> table = {
      {"basic_cnn", {family<BasicCnn>({}), "fc"}},
      {"lenet5", {family<LeNet5>({}), "fc3"}},
      {"alexnet", {family<AlexNet>({}), "classifier.6"}},
      {"torchscript", {family<TorchScriptNetwork>({}), "head"}},
  };
  for (int depth : {18, 34, 50, 101, 152}) {
    table[fmt::format("resnet{}", depth)] = {family<ResNet>({{"depth", depth}}), "fc"};
  }
  for (int depth : {11, 13, 16, 19}) {
    table[fmt::format("vgg{}", depth)] = {family<Vgg>({{"depth", depth}, {"batch_norm", false}}),
                                          "classifier.6"};
    table[fmt::format("vgg{}_bn", depth)] = {family<Vgg>({{"depth", depth}, {"batch_norm", true}}),
                                             "classifier.6"};
  }
  return table;
}

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> table = build_registry();
  return table;
}

}  // namespace

std::string resolve_model_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  GPULAB_CHECK(registry().count(lower), ErrorKind::kInvalidArgument,
               "unknown model '{}'; valid: {}", name, fmt::join(model_names(), ", "));
  return lower;
}

std::shared_ptr<Network> create_model(const ModelConfig& config) {
  const std::string name = resolve_model_name(config.arch);
  GPULAB_CHECK(config.num_classes >= 1 && config.in_channels >= 1, ErrorKind::kInvalidArgument,
               "model '{}' needs num_classes >= 1 and in_channels >= 1 (got {} and {})", name,
               config.num_classes, config.in_channels);
  return registry().at(name).factory(config);
}

std::string head_name(const std::string& arch) {
  return registry().at(resolve_model_name(arch)).head;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& kv : registry()) names.push_back(kv.first);
  return names;
}

}  // namespace gpulab::models
