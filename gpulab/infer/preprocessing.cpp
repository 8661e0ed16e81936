// The training spec's transforms, without their randomness, for inference.
#include "gpulab/infer/preprocessing.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace gpulab::infer {

std::optional<data::TransformOptions> inference_transforms(const models::ModelMetadata& metadata) {
  const nlohmann::json& spec = metadata.training;
  if (!spec.is_object() || !spec.contains("data_options") || !spec["data_options"].is_object())
    return std::nullopt;
  nlohmann::json sizing = nlohmann::json::object();
  for (auto it = spec["data_options"].begin(); it != spec["data_options"].end(); ++it) {
    std::string key = it.key();
    std::replace(key.begin(), key.end(), '-', '_');
    // Only what decides the geometry: the random transforms are left out
    // anyway, and "augment" shorthands add no fixed resize or crop.
    if (key == "resize" || key == "center_crop" || key == "random_resized_crop")
      sizing[key] = it.value();
  }
  if (sizing.empty()) return std::nullopt;
  data::TransformOptions t;
  t.channels(static_cast<int>(metadata.config.in_channels))
      .height(static_cast<int>(metadata.config.height))
      .width(static_cast<int>(metadata.config.width));
  data::apply_transform_json(t, sizing);
  t = t.deterministic();
  t.validate();
  // A spec whose sizes disagree with the network's input (edited by hand):
  // the plain resize rather than the wrong size.
  const auto out = t.output_size(1, 1);
  if (out[0] != metadata.config.height || out[1] != metadata.config.width) return std::nullopt;
  return t;
}

}  // namespace gpulab::infer
