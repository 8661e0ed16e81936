// The model registry: a name -> factory table, built on first use.
#include "gpulab/models/registry.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>

#include "gpulab/core/error.h"
#include "gpulab/models/basic_cnn.h"
#include "gpulab/models/lenet5.h"
#include "gpulab/models/resnet.h"

namespace gpulab::models {
namespace {

using Factory = std::function<std::shared_ptr<Network>(const ModelConfig&)>;

ModelConfig with_option(ModelConfig c, const std::string& key, int64_t value) {
  if (!c.options.contains(key)) c.options[key] = value;
  return c;
}

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> table = {
      {"basic_cnn", [](const ModelConfig& c) { return std::make_shared<BasicCnn>(c); }},
      {"lenet5", [](const ModelConfig& c) { return std::make_shared<LeNet5>(c); }},
      {"resnet18",
       [](const ModelConfig& c) { return std::make_shared<ResNet>(with_option(c, "depth", 18)); }},
      {"resnet34",
       [](const ModelConfig& c) { return std::make_shared<ResNet>(with_option(c, "depth", 34)); }},
  };
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
  return registry().at(name)(config);
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& kv : registry()) names.push_back(kv.first);
  return names;
}

}  // namespace gpulab::models
