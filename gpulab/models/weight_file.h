// Reading network weights from the files people have: gpulab model files,
// plain safetensors (e.g. a torchvision state dict), TorchScript archives,
// torch.save() state dicts (.pth) and MatConvNet .mat files. The format is
// recognised from the file's content.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <optional>
#include <string>

#include "gpulab/models/model_file.h"

namespace gpulab::models {

struct WeightFile {
  std::string path;
  // "gpulab", "safetensors", "torchscript", "pytorch" (torch.save) or "matconvnet"
  std::string format;
  // By PyTorch state-dict names (torchvision's for the families it has), CPU.
  std::map<std::string, at::Tensor> tensors;
  // What the file says about the network: complete for gpulab model files;
  // architecture, classes and normalisation for MatConvNet; absent otherwise.
  std::optional<ModelMetadata> metadata;
};

// Throws Error(kNotFound) for a missing file and Error(kCorruptData) naming the
// file for one that is empty, truncated or in no format above. Plain
// safetensors and torch.save files lose a DataParallel "module." prefix
// (strip_module_prefix).
//
// torch.save files: the zip archives of PyTorch 1.6 and newer (its default
// since), holding a dict of tensors (torch.save(model.state_dict(), FILE)) or
// a checkpoint dict whose "state_dict" entry is one; the other entries are
// not read. Tensors saved on a GPU load onto the CPU. Pickle protocol 2 only
// (torch.save's default). A legacy file (PyTorch before 1.6, a bare pickle) is
// Error(kCorruptData) with the command that saves it again as a zip archive:
// python3 -c "import torch; torch.save(torch.load('old.pth',
// map_location='cpu'), 'new.pth')". Nothing in the pickle runs: only dicts,
// lists, tuples, numbers, strings and tensors are built.
WeightFile read_weight_file(const std::string& path);

// PyTorch's DataParallel and DistributedDataParallel save the wrapped model's
// state dict with "module." before every name (e.g. Eromera/erfnet_pytorch's
// checkpoints). Returns `tensors` without it when every name has it, else
// unchanged (a network's own submodule called "module" keeps its name).
std::map<std::string, at::Tensor> strip_module_prefix(std::map<std::string, at::Tensor> tensors);

}  // namespace gpulab::models
