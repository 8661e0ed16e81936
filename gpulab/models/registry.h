// Models by name: the names used in flags, specs and model files.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gpulab/models/network.h"

namespace gpulab::models {

using ModelFactory = std::function<std::shared_ptr<Network>(const ModelConfig&)>;

// Adds a network family under `name` (matched case-insensitively); `head` is
// the module path of its classifier head ("" for none). For applications and
// tests: the built-in families are registered already. Throws
// Error(kInvalidArgument) for a name already taken. Thread-safe.
void register_model(const std::string& name, ModelFactory factory, std::string head = "");

// Builds the network named by config.arch (case-insensitive). Throws
// Error(kInvalidArgument) listing the valid names for an unknown one.
std::shared_ptr<Network> create_model(const ModelConfig& config);

// The registered spelling of `name` (case-insensitive match). Throws
// Error(kInvalidArgument) listing the valid names for an unknown one.
std::string resolve_model_name(const std::string& name);

// Module path of the family's classifier head: the last linear layer, which
// maps features to num_classes logits ("fc" for ResNet and basic_cnn, "fc3"
// for LeNet-5, "classifier.6" for VGG and AlexNet), or for segmentation the
// conv giving per-pixel logits ("decoder.output_conv" for ERFNet, "scorer" for
// DeepLab v3+).
std::string head_name(const std::string& arch);

// Module paths of every layer whose shape depends on num_classes, in network
// order; transfer learning replaces them all for a new class count. One, the
// head_name, for every family but ERFNet: {"encoder.output_conv",
// "decoder.output_conv"} (its encoder-only output and its full output). A
// family registered with head "" has none.
std::vector<std::string> head_names(const std::string& arch);

// Module path of the part of the family that can be trained first and alone
// (ERFNet's "encoder": Eromera/erfnet_pytorch trains it, then the decoder on
// it); "" for families without one. A weights file holding only its tensors,
// or a model file of a network trained with {"encoder_only": true}, loads into
// it alone: the rest keeps its fresh initialisation (models::plan_transfer).
std::string encoder_name(const std::string& arch);

// Registered names, sorted: alexnet, basic_cnn, deeplabv3plus, erfnet, lenet5,
// resnet18/34/50/101/152, torchscript, transformer_net, vgg11/13/16/19 and
// their _bn variants.
std::vector<std::string> model_names();

}  // namespace gpulab::models
