// Models by name: the names used in flags, specs and model files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpulab/models/network.h"

namespace gpulab::models {

// Builds the network named by config.arch (case-insensitive). Throws
// Error(kInvalidArgument) listing the valid names for an unknown one.
std::shared_ptr<Network> create_model(const ModelConfig& config);

// The registered spelling of `name` (case-insensitive match). Throws
// Error(kInvalidArgument) listing the valid names for an unknown one.
std::string resolve_model_name(const std::string& name);

// Registered names, sorted: basic_cnn, lenet5, resnet18, resnet34.
std::vector<std::string> model_names();

}  // namespace gpulab::models
