// Predictor: normalisation, bounded batches, files in order.
#include "gpulab/infer/predictor.h"

#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/infer/preprocessing.h"
#include "gpulab/models/pretrained.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/image_decode.h"
#include "gpulab/data/sample_decoder.h"
#endif

namespace gpulab::infer {
namespace fs = std::filesystem;

std::string resolve_model_path(const std::string& path) {
  if (fs::is_directory(path)) {
    auto file = fs::path(path) / "model.safetensors";
    GPULAB_CHECK(fs::exists(file), ErrorKind::kNotFound,
                 "run folder '{}' has no model.safetensors (training did not finish?)", path);
    return file.string();
  }
  GPULAB_CHECK(fs::exists(path), ErrorKind::kNotFound, "model '{}' does not exist", path);
  return path;
}

Predictor Predictor::from_path(const std::string& model, c10::Device device,
                               const std::string& weights, const models::PretrainedOptions& input) {
  return Predictor(load_model(model, weights, input), device);
}

models::LoadedModel load_model(const std::string& model, const std::string& weights,
                               const models::PretrainedOptions& input) {
  if (weights.empty()) {
    GPULAB_CHECK(input.channels() == 0 && input.height() == 0 && input.width() == 0,
                 ErrorKind::kInvalidArgument,
                 "'{}' records its input size; `channels` and `image_size` apply only with "
                 "`weights`",
                 model);
    return models::load_model_file(resolve_model_path(model));
  }
  return models::load_pretrained(model, weights, input);
}

Predictor::Predictor(models::LoadedModel model, c10::Device device)
    : model_(std::move(model)), device_(device) {
  model_.network->to(device_);
  model_.network->eval();
  affine_ = data::pixel_affine({model_.metadata.mean, model_.metadata.std}, device_);
  preprocessing_ = inference_transforms(model_.metadata);
}

void Predictor::check_input(const at::Tensor& images) const {
  const auto& c = model_.metadata.config;
  const bool channels_ok = images.dim() == 4 && images.size(1) == c.in_channels;
  const bool size_ok =
      !model_.metadata.fixed_input_size ||
      (images.dim() == 4 && images.size(2) == c.height && images.size(3) == c.width);
  GPULAB_CHECK(channels_ok && size_ok, ErrorKind::kInvalidArgument,
               "the model takes [N, {}, {}, {}] images{}, got [{}]", c.in_channels,
               model_.metadata.fixed_input_size ? std::to_string(c.height) : "H",
               model_.metadata.fixed_input_size ? std::to_string(c.width) : "W",
               model_.metadata.fixed_input_size ? "" : " (any size the network allows)",
               fmt::join(images.sizes(), ", "));
}

at::Tensor Predictor::normalise(const at::Tensor& images) const {
  return affine_.apply(images.to(device_));
}

at::Tensor Predictor::forward_normalised(const at::Tensor& input) const {
  torch::InferenceMode guard;
  return model_.network->forward(input).to(torch::kFloat32);
}

at::Tensor Predictor::forward(const at::Tensor& images, int64_t batch_size) const {
  check_input(images);
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < images.size(0); b += batch_size) {
    out.push_back(
        forward_normalised(normalise(images.slice(0, b, std::min(images.size(0), b + batch_size))))
            .cpu());
  }
  return out.empty() ? at::Tensor() : torch::cat(out);
}

at::Tensor Predictor::scores(const at::Tensor& images, int64_t batch_size) const {
  return torch::softmax(forward(images, batch_size), 1);
}

at::Tensor Predictor::decode_file(const std::string& file, int64_t max_pixels, int64_t height,
                                  int64_t width) const {
#ifdef GPULAB_WITH_OPENCV
  const auto& c = model_.metadata.config;
  const int channels = static_cast<int>(c.in_channels);
  if (height > 0 && width > 0) {
    return data::decode_image_file(file, channels, static_cast<int>(height),
                                   static_cast<int>(width), max_pixels);
  }
  if (!preprocessing_) {
    // A network that takes any size sees each image at its own (0 x 0).
    const bool fixed = model_.metadata.fixed_input_size;
    return data::decode_image_file(file, channels, fixed ? static_cast<int>(c.height) : 0,
                                   fixed ? static_cast<int>(c.width) : 0, max_pixels);
  }
  GPULAB_CHECK(fs::exists(file), ErrorKind::kNotFound, "image '{}' does not exist", file);
  const data::SampleDecoder decoder(*preprocessing_, max_pixels);
  at::Tensor hwc =
      torch::empty({decoder.out_height(), decoder.out_width(), decoder.channels()}, torch::kUInt8);
  decoder.decode(file, core::read_file(file), /*seed=*/0, hwc.data_ptr<uint8_t>());
  return hwc.permute({2, 0, 1}).contiguous();
#else
  (void)file;
  (void)max_pixels;
  (void)height;
  (void)width;
  GPULAB_FAIL(ErrorKind::kUnavailable, "predicting on image files needs the OpenCV build");
#endif
}

}  // namespace gpulab::infer
