// Predictor: normalisation, batching and top-k.
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
                 "'{}' records its input size; --channels and --image-size apply only with "
                 "--weights",
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

at::Tensor Predictor::scores(const at::Tensor& images, int64_t batch_size) const {
  const auto& c = model_.metadata.config;
  GPULAB_CHECK(images.dim() == 4 && images.size(1) == c.in_channels && images.size(2) == c.height &&
                   images.size(3) == c.width,
               ErrorKind::kInvalidArgument, "the model takes [N, {}, {}, {}] images, got [{}]",
               c.in_channels, c.height, c.width, fmt::join(images.sizes(), ", "));
  torch::InferenceMode guard;
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < images.size(0); b += batch_size) {
    auto x = images.slice(0, b, std::min(images.size(0), b + batch_size)).to(device_);
    out.push_back(
        torch::softmax(model_.network->forward(affine_.apply(x)).to(torch::kFloat32), 1).cpu());
  }
  return torch::cat(out);
}

at::Tensor Predictor::decode_file(const std::string& file, int64_t max_pixels) const {
#ifdef GPULAB_WITH_OPENCV
  const auto& c = model_.metadata.config;
  if (!preprocessing_) {
    return data::decode_image_file(file, static_cast<int>(c.in_channels),
                                   static_cast<int>(c.height), static_cast<int>(c.width),
                                   max_pixels);
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
  GPULAB_FAIL(ErrorKind::kUnavailable, "predicting on image files needs the OpenCV build");
#endif
}

std::vector<Prediction> Predictor::predict_files(const std::vector<std::string>& all_files,
                                                 int64_t top_k, const FileOptions& options,
                                                 std::vector<std::string>* skipped) const {
  std::vector<at::Tensor> images;
  std::vector<std::string> files;
  for (const auto& f : all_files) {
    try {
      images.push_back(decode_file(f, options.max_pixels()));
      files.push_back(f);
    } catch (const Error& e) {
      if (!options.skip_bad_files() || e.kind() != ErrorKind::kCorruptData) throw;
      if (skipped != nullptr) skipped->push_back(f);
    }
  }
  if (images.empty()) return {};
  at::Tensor probs = scores(torch::stack(images));
  const auto& names = model_.metadata.class_names;
  const int64_t k = std::min<int64_t>(top_k, probs.size(1));
  std::vector<Prediction> result;
  for (int64_t i = 0; i < probs.size(0); ++i) {
    Prediction p;
    p.file = files[static_cast<size_t>(i)];
    auto row = probs[i].contiguous();
    p.scores.assign(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
    auto top = row.topk(k);
    auto values = std::get<0>(top);
    auto indices = std::get<1>(top);
    for (int64_t j = 0; j < k; ++j) {
      int64_t idx = indices[j].item<int64_t>();
      p.top.emplace_back(names.at(static_cast<size_t>(idx)), values[j].item<float>());
    }
    p.label_index = indices[0].item<int64_t>();
    result.push_back(std::move(p));
  }
  return result;
}

}  // namespace gpulab::infer
