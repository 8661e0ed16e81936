// Inference with a trained model on one device: batched logits, softmax
// scores and top-k labels for tensors or image files.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "gpulab/core/options.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/data/transforms.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/pretrained.h"

namespace gpulab::infer {

struct FileOptions {
  // Leave out files that cannot be decoded (or exceed max_pixels) instead of
  // failing on the first.
  GPULAB_ARG(bool, skip_bad_files) = false;
  // Images with more pixels are refused by their header, before decoding.
  GPULAB_ARG(int64_t, max_pixels) = data::kDefaultMaxPixels;
};

struct Prediction {
  std::string file;                                // source, when from a file
  std::vector<std::pair<std::string, float>> top;  // (label, score), best first
  std::vector<float> scores;                       // softmax, class-index order
  int64_t label_index = 0;
};

class Predictor {
 public:
  // Loads a model file (RUN_DIR/model.safetensors or any gpulab model file).
  Predictor(models::LoadedModel model, c10::Device device);
  // model: RUN_DIR, model file, or an architecture name when `weights` is
  // given (see load_model).
  static Predictor from_path(const std::string& model, c10::Device device,
                             const std::string& weights = "",
                             const models::PretrainedOptions& input = {});

  // images: [N, C, H, W] uint8 at the model's input size (RGB). Returns
  // softmax scores [N, num_classes] float32 on CPU. Runs in batches of
  // `batch_size` under inference mode.
  at::Tensor scores(const at::Tensor& images, int64_t batch_size = 256) const;

  // One file as the model's input, [C, H, W] uint8: through the
  // deterministic part of the training transforms (inference_transforms),
  // else resized to the input size only when it differs. Throws
  // Error(kCorruptData) naming the file. Requires the OpenCV build.
  at::Tensor decode_file(const std::string& file,
                         int64_t max_pixels = data::kDefaultMaxPixels) const;

  // Decodes each file (decode_file), then predicts, in the files' order.
  // Files left out under skip_bad_files are appended to `skipped`.
  std::vector<Prediction> predict_files(const std::vector<std::string>& files, int64_t top_k,
                                        const FileOptions& options = {},
                                        std::vector<std::string>* skipped = nullptr) const;

  const models::ModelMetadata& metadata() const { return model_.metadata; }
  // How files are decoded (see inference_transforms); nullopt = plain resize.
  const std::optional<data::TransformOptions>& preprocessing() const { return preprocessing_; }

 private:
  models::LoadedModel model_;
  c10::Device device_;
  data::PixelAffine affine_;                             // normalisation on device_
  std::optional<data::TransformOptions> preprocessing_;  // see inference_transforms
};

// RUN_DIR -> RUN_DIR/model.safetensors; a file path is returned as is. Throws
// Error(kNotFound) naming the path when neither exists.
std::string resolve_model_path(const std::string& run_dir_or_file);

// What --model/--weights name: without weights, a RUN_DIR or gpulab model
// file; with weights (safetensors, TorchScript, MatConvNet .mat, gpulab), an
// architecture name ("" or the file's own) built for them; `input` is the
// input size of weights whose file records none (models::load_pretrained).
models::LoadedModel load_model(const std::string& model, const std::string& weights,
                               const models::PretrainedOptions& input = {});

}  // namespace gpulab::infer
