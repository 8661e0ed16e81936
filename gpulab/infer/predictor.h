// Inference with a trained model on one device, for any task: the network's
// raw outputs over bounded batches (memory does not grow with the number of
// inputs), decoded by the model file's output kind (output_decoders.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "gpulab/core/options.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/normalization.h"
#include "gpulab/data/transforms.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/pretrained.h"

namespace gpulab::infer {

// Not thread-safe: one Predictor per thread (the worker pool holds one per
// device, each with its own copy of the network). forward() runs in
// inference mode, fp32, as validation does.
class Predictor {
 public:
  Predictor(models::LoadedModel model, c10::Device device);
  // model: RUN_DIR, model file, or an architecture name when `weights` is
  // given (see load_model).
  static Predictor from_path(const std::string& model, c10::Device device,
                             const std::string& weights = "",
                             const models::PretrainedOptions& input = {});

  // images: [N, C, H, W] uint8 (RGB) at a size the network takes. Returns
  // the raw outputs as float32 on CPU, computed `batch_size` images at a time.
  at::Tensor forward(const at::Tensor& images, int64_t batch_size = 32) const;
  // The raw output of normalised float32 input already on the device,
  // left on the device (evaluation feeds the task's Metrics from here).
  at::Tensor forward_normalised(const at::Tensor& input) const;
  // The normalisation of uint8 images, on the device.
  at::Tensor normalise(const at::Tensor& images) const;
  // Softmax class scores [N, classes] for a class-score model (forward + softmax).
  at::Tensor scores(const at::Tensor& images, int64_t batch_size = 256) const;

  // One file as the model's input, [C, H, W] uint8: through the
  // deterministic part of the training transforms (inference_transforms),
  // else resized to the training size when the network takes only that (or
  // to height x width when given), else at its own size. Throws
  // Error(kCorruptData) naming the file. Requires the OpenCV build.
  at::Tensor decode_file(const std::string& file, int64_t max_pixels = data::kDefaultMaxPixels,
                         int64_t height = 0, int64_t width = 0) const;
  // Checks that [C, H, W] images of this size fit the network (channels; the
  // training size, or multiples the network needs); throws
  // Error(kInvalidArgument) naming the size and what fits.
  void check_input(const at::Tensor& images) const;

  const models::ModelMetadata& metadata() const { return model_.metadata; }
  models::OutputKind output_kind() const { return model_.metadata.output; }
  c10::Device device() const { return device_; }
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
