// Networks from imported weights: building a registered family for a weight
// file, and loading weights into a network for transfer learning.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/weight_file.h"

namespace gpulab::models {

// The preprocessing torchvision's ImageNet weights expect: RGB, 224x224,
// mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225); classes "0".."N-1".
// ERFNet's weights are Eromera/erfnet_pytorch's, which feeds ToTensor()'s
// [0, 1] RGB unnormalised: mean 0, std 1.
// transformer_net's are pytorch/examples', which feeds ToTensor() * 255:
// 0-255 pixels, mean 0, std 1/255; its files' stale in*.running_mean/var
// entries are dropped (drop_legacy_instance_norm_stats), as its stylize() does.
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

// What load_weights_for_transfer copies from `weights` into `network`, built
// as `arch`.
struct TransferPlan {
  // Module paths that keep the network's fresh initialisation: with
  // replace_head the class-dependent layers (registry head_names); when the
  // file gives only the family's encoder (encoder_only) every top-level module
  // but the encoder (ERFNet: "decoder"). Heads first; a path inside another
  // listed one is left out.
  std::vector<std::string> fresh;
  // The file holds only tensors of the family's encoder (registry
  // encoder_name), or is a model file of a network trained with
  // {"encoder_only": true}, whose other tensors never trained.
  bool encoder_only = false;
  // The file's tensors outside `fresh` and the network's own inside it.
  std::map<std::string, at::Tensor> tensors;
};

TransferPlan plan_transfer(const Network& network, const std::string& arch,
                           const WeightFile& weights, bool replace_head);

// Copies `weights` into `network`, built as `arch`, as plan_transfer says:
// replace_head (a new class count) keeps fresh heads; a file with only the
// encoder keeps a fresh rest. Every other tensor must be in the file and fit:
// Error(kCorruptData) lists the missing, unexpected and wrong-shape ones.
void load_weights_for_transfer(Network& network, const std::string& arch, const WeightFile& weights,
                               bool replace_head);

// Class count of the head in `weights` for `arch`: of the first of its
// head_names the file holds, from its bias (a transposed conv's weight is
// [in, out, kH, kW]), else its weight's first dimension (linear or conv).
// 0 when the file holds none of them.
int64_t head_classes(const WeightFile& weights, const std::string& arch);

}  // namespace gpulab::models
