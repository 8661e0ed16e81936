// How images become a trained network's input at inference: as its
// validation images did in training (the transforms' deterministic part), so
// evaluate and predict score images the way training reported.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "gpulab/data/transforms.h"

namespace gpulab::data {

// The deterministic part (resize, centre crop; a random resized crop as a
// resize to its size) of the transforms in a run's `data_options`, at the
// network's `channels` and training input size. nullopt when training set
// none of those (images are then resized straight to the input size) or
// when they disagree with that size (a spec edited by hand).
std::optional<TransformOptions> inference_transforms(const nlohmann::json& data_options,
                                                     int channels, int height, int width);

}  // namespace gpulab::data
