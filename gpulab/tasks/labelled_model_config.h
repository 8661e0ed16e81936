// The network configuration shared by tasks that predict classes (per image
// or per pixel).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "gpulab/models/network.h"
#include "gpulab/tasks/task.h"

namespace gpulab::tasks {

// The network `arch` (family `options`) for labelled data of this shape:
// one output per class of its labels, its images' channels and size.
models::ModelConfig labelled_model_config(const std::string& arch, const nlohmann::json& options,
                                          const DataShape& data);

}  // namespace gpulab::tasks
