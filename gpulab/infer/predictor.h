// Inference with a trained model on one device: batched logits, softmax
// scores and top-k labels for tensors or image files.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "gpulab/data/resident_batcher.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/pretrained.h"

namespace gpulab::infer {

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

  // Decodes each file (resized to the model's input size only when it
  // differs), then predicts. Requires the OpenCV build.
  std::vector<Prediction> predict_files(const std::vector<std::string>& files, int64_t top_k) const;

  const models::ModelMetadata& metadata() const { return model_.metadata; }

 private:
  models::LoadedModel model_;
  c10::Device device_;
  data::PixelAffine affine_;  // normalisation on device_
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
