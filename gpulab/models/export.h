// Writing a trained network for other tools: safetensors (weights by PyTorch
// names, readable by Python's safetensors and torch) and TorchScript (a traced
// forward, runnable with torch.jit.load in Python or C++ with no gpulab).
#pragma once

#include <string>

#include "gpulab/models/model_file.h"

namespace gpulab::models {

// The network's parameters and buffers (float32 CPU) under their PyTorch
// names, with the gpulab metadata kept in __metadata__; written atomically.
void export_safetensors(const LoadedModel& model, const std::string& path);

// Traces the network in eval mode on a [1, C, H, W] input of the model's size
// and saves a TorchScript archive. Its submodules, parameters and buffers keep
// the network's names (state_dict() in Python matches ours); forward takes
// normalised float32 [N, C, H, W] and returns [N, num_classes] logits. The
// metadata (classes, normalisation) is the archive's extra file "gpulab.json".
// Written atomically.
void export_torchscript(const LoadedModel& model, const std::string& path);

}  // namespace gpulab::models
