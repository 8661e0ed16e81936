// Where a run's training starts when the spec names weights: the network they
// name (architecture and options), the head they bring or a new one, the
// channels and normalisation they expect. On a resume from a checkpoint the
// weights file is not read: spec.yaml recorded what it resolved.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/data/label_spec.h"
#include "gpulab/models/weight_file.h"
#include "gpulab/train/trainer.h"

namespace gpulab::train {

// A gpulab, TorchScript or MatConvNet file names its network: it becomes
// spec.model (with its options) unless spec.model says otherwise, which must
// then agree (models::resolve_weights_arch).
void resolve_model_from_weights(nlohmann::json& spec, const models::WeightFile& weights);

// The input channels of the network in `weights`: its metadata's, else its
// first convolution's (torchvision names); 0 when the file does not say.
int weights_input_channels(const models::WeightFile& weights);

// The initial weights of a fresh run (checked against the data's labels and
// channels; their normalisation recorded into file_spec, spec.yaml), or on a
// resume only the normalisation spec.yaml recorded. nullopt: start from a
// random initialisation, normalisation from the data.
std::optional<InitialWeights> initial_weights(
    const nlohmann::json& spec, nlohmann::json& file_spec,
    const std::shared_ptr<const models::WeightFile>& weights, const std::string& arch,
    const data::LabelSpec& labels, int64_t channels);

// The normalisation `weights` were trained with (for data sized before the
// data is read): the file's own, ImageNet's for RGB, else unset.
std::optional<data::Normalization> weights_normalization(const models::WeightFile& weights,
                                                         const std::string& arch, int64_t channels);

}  // namespace gpulab::train
