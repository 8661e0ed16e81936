// The training spec's transforms, without their randomness, for inference.
#include "gpulab/infer/preprocessing.h"

#include "gpulab/data/inference_transforms.h"

namespace gpulab::infer {

std::optional<data::TransformOptions> inference_transforms(const models::ModelMetadata& metadata) {
  const nlohmann::json& spec = metadata.training;
  if (!spec.is_object() || !spec.contains("data_options")) return std::nullopt;
  return data::inference_transforms(
      spec["data_options"], static_cast<int>(metadata.config.in_channels),
      static_cast<int>(metadata.config.height), static_cast<int>(metadata.config.width));
}

}  // namespace gpulab::infer
