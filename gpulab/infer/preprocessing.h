// How images become a trained model's input at inference: as its validation
// images did in training (the transforms' deterministic part), so evaluate
// and predict score images the way training reported.
#pragma once

#include <optional>

#include "gpulab/data/transforms.h"
#include "gpulab/models/model_file.h"

namespace gpulab::infer {

// The deterministic part (resize, centre crop; a random resized crop as a
// resize to its size) of the transforms recorded in the model's training
// spec (metadata.training["data_options"]), at the model's channels and
// input size. nullopt when training set none of those: images are then
// resized straight to the input size (data::decode_image_file).
std::optional<data::TransformOptions> inference_transforms(const models::ModelMetadata& metadata);

}  // namespace gpulab::infer
