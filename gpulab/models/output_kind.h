// What a network's output is, so inference can decode it without knowing the
// task that trained it.
#pragma once

#include <string>

namespace gpulab::models {

enum class OutputKind {
  kClassScores,  // [N, classes] logits: top-k labels and softmax scores
  kLabelMap,     // [N, classes, H, W] logits: a label id per pixel (argmax)
  kImage,        // [N, 3, H, W] an image in 0-255 units (style transfer)
};

// "class_scores" | "label_map" | "image".
std::string to_string(OutputKind kind);
// The inverse; throws Error(kCorruptData) naming `source` for another name.
OutputKind parse_output_kind(const std::string& name, const std::string& source);

}  // namespace gpulab::models
