// Networks from imported weights: building a registered family for a weight
// file, and loading weights into a network for transfer learning.
#pragma once

#include <string>

#include "gpulab/core/options.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/weight_file.h"

namespace gpulab::models {

// The preprocessing torchvision's ImageNet weights expect: RGB, 224x224,
// mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225); classes "0".."N-1".
ModelMetadata torchvision_metadata(const std::string& arch, int64_t num_classes);

// The input of imported weights whose file does not record it (plain
// safetensors, a TorchScript archive without gpulab.json). 0 = the default,
// torchvision's 3x224x224. Images with other than 3 channels are fed as
// [0, 1] pixels (mean 0, std 1): ImageNet's statistics are per RGB channel.
struct PretrainedOptions {
  GPULAB_ARG(int64_t, channels) = 0;
  GPULAB_ARG(int64_t, height) = 0;
  GPULAB_ARG(int64_t, width) = 0;
};

// The architecture to build for `weights`: `requested` (any registered name,
// checked against the one the file names; "torchscript" needs a TorchScript
// file), or when empty the file's own. Throws Error(kInvalidArgument) for a
// mismatch or when neither names one.
std::string resolve_weights_arch(const std::string& requested, const WeightFile& weights);

// Builds `arch` (empty: the architecture the file names) with the class count
// of the file's head and loads every tensor. The metadata is the file's own
// (gpulab, MatConvNet) or torchvision's at `options`' input size; a TorchScript
// archive without gpulab.json is run once on a zero batch of that size to
// learn its class count. A ResNet file that records no options gets the stem
// its conv1.weight has (7x7 torchvision, 3x3 small_input), whatever the input
// size. Throws Error(kInvalidArgument) when the file names
// another architecture, records another input size than `options`, or (an
// archive) does not take that input; Error(kCorruptData) listing missing,
// unexpected and wrong-shape tensors.
LoadedModel load_pretrained(const std::string& arch, const std::string& path,
                            const PretrainedOptions& options = {});

// Copies `weights` into `network`, built as `arch`. replace_head: the head's
// tensors (registry head_name) are left out and keep their fresh
// initialisation, for a new class count; every other tensor must fit.
void load_weights_for_transfer(Network& network, const std::string& arch, const WeightFile& weights,
                               bool replace_head);

// Class count of the head in `weights` for `arch`; 0 when it has no head.
int64_t head_classes(const WeightFile& weights, const std::string& arch);

}  // namespace gpulab::models
