// The model registry: a name -> factory table, built on first use.
#include "gpulab/models/registry.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <mutex>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/models/alexnet.h"
#include "gpulab/models/basic_cnn.h"
#include "gpulab/models/deeplabv3plus.h"
#include "gpulab/models/erfnet.h"
#include "gpulab/models/lenet5.h"
#include "gpulab/models/resnet.h"
#include "gpulab/models/torchscript_network.h"
#include "gpulab/models/transformer_net.h"
#include "gpulab/models/vgg.h"

namespace gpulab::models {
namespace {

using Factory = ModelFactory;

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
  std::string head;  // module path of the layer giving the class logits
  // Every class-dependent layer (head among them); empty when head is "".
  std::vector<std::string> heads;
  std::string encoder;  // the part trained first and alone; "" for none
};

Entry entry(Factory factory, const std::string& head) {
  return {std::move(factory), head, head.empty() ? std::vector<std::string>{} : std::vector{head},
          ""};
}

std::map<std::string, Entry> build_registry() {
  std::map<std::string, Entry> table = {
      {"basic_cnn", entry(family<BasicCnn>({}), "fc")},
      {"lenet5", entry(family<LeNet5>({}), "fc3")},
      {"alexnet", entry(family<AlexNet>({}), "classifier.6")},
      {"torchscript", entry(family<TorchScriptNetwork>({}), "head")},
      // Segmentation: the layer that maps features to per-pixel class logits.
      // ERFNet's encoder.output_conv (encoder-only mode) also has num_classes
      // filters; the reference trains its encoder first.
      {"erfnet",
       {family<ErfNet>({}),
        "decoder.output_conv",
        {"encoder.output_conv", "decoder.output_conv"},
        "encoder"}},
      {"deeplabv3plus", entry(family<DeepLabV3Plus>({}), "scorer")},
      {"transformer_net", entry(family<TransformerNet>({}), "")},
  };
  for (int depth : {18, 34, 50, 101, 152}) {
    table[fmt::format("resnet{}", depth)] = entry(family<ResNet>({{"depth", depth}}), "fc");
  }
  for (int depth : {11, 13, 16, 19}) {
    table[fmt::format("vgg{}", depth)] =
        entry(family<Vgg>({{"depth", depth}, {"batch_norm", false}}), "classifier.6");
    table[fmt::format("vgg{}_bn", depth)] =
        entry(family<Vgg>({{"depth", depth}, {"batch_norm", true}}), "classifier.6");
  }
  return table;
}

// Built-in families, and those registered at run time (register_model).
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> table = build_registry();
  return table;
}
std::mutex g_registry_mutex;  // guards registry() against register_model

}  // namespace

void register_model(const std::string& name, ModelFactory factory, std::string head) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  const std::string lower = core::to_lower(name);
  GPULAB_CHECK(registry().count(lower) == 0, ErrorKind::kInvalidArgument,
               "model '{}' is registered twice", name);
  registry()[lower] = entry(std::move(factory), head);
}

std::string resolve_model_name(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  const std::string lower = core::to_lower(name);
  if (registry().count(lower) == 0) {
    std::vector<std::string> valid;
    for (const auto& kv : registry()) valid.push_back(kv.first);
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "unknown model '{}'; valid: {}", name,
                fmt::join(valid, ", "));
  }
  return lower;
}

std::shared_ptr<Network> create_model(const ModelConfig& config) {
  const std::string name = resolve_model_name(config.arch);
  GPULAB_CHECK(config.num_classes >= 1 && config.in_channels >= 1, ErrorKind::kInvalidArgument,
               "model '{}' needs num_classes >= 1 and in_channels >= 1 (got {} and {})", name,
               config.num_classes, config.in_channels);
  Factory factory;
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    factory = registry().at(name).factory;
  }
  return factory(config);
}

std::string head_name(const std::string& arch) {
  const std::string name = resolve_model_name(arch);
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  return registry().at(name).head;
}

std::vector<std::string> head_names(const std::string& arch) {
  const std::string name = resolve_model_name(arch);
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  return registry().at(name).heads;
}

std::string encoder_name(const std::string& arch) {
  const std::string name = resolve_model_name(arch);
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  return registry().at(name).encoder;
}

std::vector<std::string> model_names() {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  std::vector<std::string> names;
  for (const auto& kv : registry()) names.push_back(kv.first);
  return names;
}

}  // namespace gpulab::models
