// Decoding raw network outputs.
#include "gpulab/infer/output_decoders.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/models/safetensors.h"

namespace gpulab::infer {

ClassScores decode_class_scores(const at::Tensor& logits, const std::vector<std::string>& names,
                                int64_t top_k) {
  GPULAB_CHECK(logits.dim() == 1 && logits.size(0) == static_cast<int64_t>(names.size()),
               ErrorKind::kInvalidArgument, "class scores: expected [{}] logits, got [{}]",
               names.size(), fmt::join(logits.sizes(), ", "));
  const at::Tensor probs = decode_softmax_scores(logits).contiguous();
  ClassScores out;
  out.scores.assign(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
  const int64_t k = std::min<int64_t>(top_k, probs.size(0));
  const auto [values, indices] = probs.topk(k);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t idx = indices[j].item<int64_t>();
    out.top.emplace_back(names.at(static_cast<size_t>(idx)), values[j].item<float>());
  }
  out.label_index = indices[0].item<int64_t>();
  return out;
}

at::Tensor decode_softmax_scores(const at::Tensor& logits) {
  GPULAB_CHECK(logits.dim() == 1 || logits.dim() == 3, ErrorKind::kInvalidArgument,
               "class scores: expected one image's [classes] or [classes, H, W] logits, got [{}]",
               fmt::join(logits.sizes(), ", "));
  // The largest logit's exp(0) is exactly 1 after softmax's max subtraction,
  // so the label id's score stays the pixel's highest in float32.
  return torch::softmax(logits.to(torch::kFloat32), 0);
}

void save_class_scores(const std::string& path, const at::Tensor& scores,
                       const std::vector<std::string>& class_names, const std::string& source) {
  GPULAB_CHECK(scores.dim() == 1 || scores.dim() == 3, ErrorKind::kInvalidArgument,
               "class scores for '{}': expected [classes] or [classes, H, W], got [{}]", source,
               fmt::join(scores.sizes(), ", "));
  GPULAB_CHECK(class_names.empty() || scores.size(0) == static_cast<int64_t>(class_names.size()),
               ErrorKind::kInvalidArgument,
               "class scores for '{}': {} classes, but the model names {}; is the label spec "
               "the model's?",
               source, scores.size(0), class_names.size());
  models::SafetensorsContent content;
  content.tensors["scores"] = scores.to(torch::kCPU, torch::kFloat32).contiguous();
  content.metadata = {{"format", "gpulab.class_scores"},
                      {"format_version", "1"},
                      {"dims", scores.dim() == 1 ? "class" : "class,height,width"},
                      {"source", source}};
  if (!class_names.empty()) content.metadata["classes"] = nlohmann::json(class_names).dump();
  models::save_safetensors(path, content);
}

at::Tensor decode_label_map(const at::Tensor& logits) {
  GPULAB_CHECK(logits.dim() == 3 || logits.dim() == 4, ErrorKind::kInvalidArgument,
               "label map: expected [classes, H, W] logits, got [{}]",
               fmt::join(logits.sizes(), ", "));
  const int64_t class_dim = logits.dim() - 3;
  GPULAB_CHECK(logits.size(class_dim) <= 255, ErrorKind::kInvalidArgument,
               "label map: {} classes do not fit a uint8 label map (at most 255)",
               logits.size(class_dim));
  return logits.argmax(class_dim).to(torch::kUInt8);
}

at::Tensor colorize_label_map(const at::Tensor& label_map,
                              const std::vector<std::array<uint8_t, 3>>& palette) {
  // Row 256 of the table is black for ids past the palette (ignore, void).
  at::Tensor table = torch::zeros({256, 3}, torch::kUInt8);
  for (size_t c = 0; c < palette.size() && c < 256; ++c) {
    for (int k = 0; k < 3; ++k) table[static_cast<int64_t>(c)][k] = palette[c][k];
  }
  return table.index_select(0, label_map.to(torch::kInt64).flatten())
      .view({label_map.size(0), label_map.size(1), 3});
}

at::Tensor overlay(const at::Tensor& image, const at::Tensor& colors, double alpha) {
  at::Tensor mixed = image.to(torch::kFloat32) * (1 - alpha) + colors.to(torch::kFloat32) * alpha;
  return mixed.round().clamp(0, 255).to(torch::kUInt8);
}

at::Tensor decode_image(const at::Tensor& output) {
  GPULAB_CHECK(
      (output.dim() == 3 && output.size(0) == 3) || (output.dim() == 4 && output.size(1) == 3),
      ErrorKind::kInvalidArgument, "image output: expected [3, H, W], got [{}]",
      fmt::join(output.sizes(), ", "));
  const at::Tensor hwc =
      output.dim() == 3 ? output.permute({1, 2, 0}) : output.permute({0, 2, 3, 1});
  return hwc.round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

}  // namespace gpulab::infer
