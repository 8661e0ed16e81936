// The training spec's transforms, without their randomness, for inference.
#include "gpulab/data/inference_transforms.h"

#include <algorithm>

namespace gpulab::data {

std::optional<TransformOptions> inference_transforms(const nlohmann::json& data_options,
                                                     int channels, int height, int width) {
  if (!data_options.is_object()) return std::nullopt;
  nlohmann::json sizing = nlohmann::json::object();
  for (auto it = data_options.begin(); it != data_options.end(); ++it) {
    std::string key = it.key();
    std::replace(key.begin(), key.end(), '-', '_');
    // Only what decides the geometry: the random transforms are left out
    // anyway, and "augment" shorthands add no fixed resize or crop.
    if (key == "resize" || key == "center_crop" || key == "random_resized_crop")
      sizing[key] = it.value();
  }
  if (sizing.empty()) return std::nullopt;
  TransformOptions t;
  t.channels(channels).height(height).width(width);
  apply_transform_json(t, sizing);
  t = t.deterministic();
  t.validate();
  const auto out = t.output_size(1, 1);
  if (out[0] != height || out[1] != width) return std::nullopt;
  return t;
}

}  // namespace gpulab::data
