// The network's raw outputs turned into what a user keeps, by the model
// file's output kind: class labels and scores, label maps and colour
// overlays, images; and any class-score output as a file other tools read.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gpulab::infer {

struct ClassScores {
  std::vector<std::pair<std::string, float>> top;  // (label, score), best first
  std::vector<float> scores;                       // softmax, class-index order
  int64_t label_index = 0;
};

// logits: [classes] float32 (one image's raw output); names: class names.
ClassScores decode_class_scores(const at::Tensor& logits, const std::vector<std::string>& names,
                                int64_t top_k);

// logits: one image's raw output, [classes] (class scores) or [classes, H, W]
// (a label map's) -> its softmax class scores, float32 of the same shape. The
// image's (each pixel's) scores sum to 1, and the class decode_class_scores
// or decode_label_map picks has the highest score (the argmax, ties aside).
at::Tensor decode_softmax_scores(const at::Tensor& logits);

// Writes one image's softmax class scores (decode_softmax_scores: [classes]
// or [classes, H, W]) to `path` atomically as safetensors, which Python reads
// with `safetensors.torch.load_file(path)["scores"]`: the tensor "scores",
// float32, the same shape (C order); __metadata__ {"format":
// "gpulab.class_scores", "format_version": "1", "dims": "class" or
// "class,height,width", "classes": a JSON array of `class_names` (left out
// when empty), "source": `source`, the input file}. 4 bytes per class and
// pixel: 5.8 MB for 11 classes at 512x256. Throws Error(kInvalidArgument)
// when the names do not match the class dimension, Error(kIo) naming `path`.
void save_class_scores(const std::string& path, const at::Tensor& scores,
                       const std::vector<std::string>& class_names, const std::string& source);

// logits: [classes, H, W] or [N, classes, H, W] -> the label id per pixel,
// [H, W] or [N, H, W] uint8 (argmax; at most 255 classes).
at::Tensor decode_label_map(const at::Tensor& logits);

// A label map [H, W] uint8 coloured by `palette` (one RGB per class; ids past
// it, e.g. an ignore value, are black): [H, W, 3] uint8.
at::Tensor colorize_label_map(const at::Tensor& label_map,
                              const std::vector<std::array<uint8_t, 3>>& palette);

// `image` [H, W, 3] uint8 with `colors` [H, W, 3] uint8 blended in at
// `alpha` (0 = image only): what a segmentation overlay shows.
at::Tensor overlay(const at::Tensor& image, const at::Tensor& colors, double alpha = 0.5);

// output: [3, H, W] (or [N, 3, H, W]) float in 0-255 units -> [H, W, 3] (or
// [N, H, W, 3]) uint8, rounded and clamped.
at::Tensor decode_image(const at::Tensor& output);

}  // namespace gpulab::infer
