// Style transfer's options, data, loss network set-up, metrics and previews.
#include "gpulab/tasks/style_transfer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/data/image_decode.h"
#include "gpulab/data/image_encode.h"
#include "gpulab/models/vgg_features.h"
#include "gpulab/models/weight_file.h"
#include "gpulab/tasks/perceptual_loss.h"

namespace gpulab::tasks {
namespace fs = std::filesystem;
namespace {

constexpr int kDefaultImageSize = 256;  // pytorch/examples' and lengstrom's crop

const char* const kOptionKeys =
    "style_image, loss_network, loss_network_weights, content_layers, style_layers, "
    "content_weight, style_weight, tv_weight, style_size, preview_image";

std::string option_text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

double parse_weight(const std::string& key, const std::string& value) {
  double v = -1;
  try {
    size_t used = 0;
    v = std::stod(value, &used);
    if (used != value.size()) v = -1;
  } catch (const std::exception&) {
  }
  GPULAB_CHECK(std::isfinite(v) && v >= 0, ErrorKind::kInvalidArgument,
               "style: task option `{}` is a weight >= 0 such as 1e5, got '{}'", key, value);
  return v;
}

std::string trimmed(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  const size_t end = text.find_last_not_of(" \t");
  return begin == std::string::npos ? std::string() : text.substr(begin, end - begin + 1);
}

std::vector<std::string> parse_layers(const std::string& key, const nlohmann::json& value) {
  std::vector<std::string> layers;
  if (value.is_array()) {
    for (const auto& v : value) layers.push_back(trimmed(option_text(v)));
  } else {
    const std::string text = option_text(value);
    for (size_t begin = 0; begin <= text.size();) {
      const size_t comma = std::min(text.find(',', begin), text.size());
      layers.push_back(trimmed(text.substr(begin, comma - begin)));
      begin = comma + 1;
    }
  }
  layers.erase(std::remove(layers.begin(), layers.end(), std::string()), layers.end());
  GPULAB_CHECK(!layers.empty(), ErrorKind::kInvalidArgument,
               "style: task option `{}` names one or more loss-network layers, e.g. relu2_2 or "
               "relu1_2,relu2_2,relu3_3,relu4_3; got '{}'",
               key, option_text(value));
  return layers;
}

// Sums: [loss * n, n, content * n, style * n, tv * n].
class StyleMetrics : public Metrics {
 public:
  explicit StyleMetrics(c10::Device device)
      : sums_(torch::zeros({kLossSums + 3}, torch::TensorOptions(torch::kFloat64).device(device))) {
  }

  void update(const at::Tensor& output, const data::Batch&, const LossTerms& loss) override {
    const int64_t n = output.size(0);
    if (n == 0) return;
    add_loss_sums(sums_, loss, n);
    for (size_t k = 0; k < loss.parts.size() && k < 3; ++k) {
      sums_[kLossSums + static_cast<int64_t>(k)].add_(
          loss.parts[k].second.detach().to(torch::kFloat64) * n);
    }
  }
  at::Tensor& sums() override { return sums_; }
  void reset() override { sums_.zero_(); }
  MetricValues values() const override {
    const at::Tensor host = sums_.cpu();
    const double* s = host.data_ptr<double>();
    const double n = s[1];
    auto mean = [n](double v) { return n > 0 ? v / n : std::nan(""); };
    return {{"loss", mean(s[0])},
            {"content_loss", mean(s[2])},
            {"style_loss", mean(s[3])},
            {"tv_loss", mean(s[4])}};
  }

 private:
  at::Tensor sums_;
};

// An image file as [1, 3, H, W] float32 0-255 on `device`; with `shorter` >
// 0, resized so its shorter side has that many pixels.
at::Tensor load_image_pixels(const std::string& path, int shorter, c10::Device device) {
  at::Tensor chw = data::decode_image_file(path, 3, 0, 0);
  if (shorter > 0) {
    const double f = static_cast<double>(shorter) / std::min(chw.size(1), chw.size(2));
    chw = data::decode_image_file(path, 3, static_cast<int>(std::lround(chw.size(1) * f)),
                                  static_cast<int>(std::lround(chw.size(2) * f)));
  }
  return chw.unsqueeze(0).to(device, torch::kFloat32);
}

}  // namespace

StyleTransferOptions StyleTransferOptions::from_json(const nlohmann::json& j) {
  StyleTransferOptions o;
  if (j.is_null()) return o;
  GPULAB_CHECK(j.is_object(), ErrorKind::kInvalidArgument,
               "style: task options must be KEY=VALUE pairs, got {}", j.dump());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const std::string value = option_text(it.value());
    if (key == "style_image") {
      o.style_image = value;
    } else if (key == "loss_network") {
      o.loss_network = core::to_lower(value);
      GPULAB_CHECK(o.loss_network == "vgg16" || o.loss_network == "vgg19",
                   ErrorKind::kInvalidArgument,
                   "style: task option `loss_network` is vgg16 or vgg19, got '{}'", value);
    } else if (key == "loss_network_weights") {
      o.loss_network_weights = value;
    } else if (key == "content_layers") {
      o.content_layers = parse_layers(key, it.value());
    } else if (key == "style_layers") {
      o.style_layers = parse_layers(key, it.value());
    } else if (key == "content_weight") {
      o.content_weight = parse_weight(key, value);
    } else if (key == "style_weight") {
      o.style_weight = parse_weight(key, value);
    } else if (key == "tv_weight") {
      o.tv_weight = parse_weight(key, value);
    } else if (key == "style_size") {
      const double v = parse_weight(key, value);
      GPULAB_CHECK(v == std::floor(v) && v <= 16384, ErrorKind::kInvalidArgument,
                   "style: task option `style_size` is the style image's shorter side in pixels "
                   "(0 = its own size), got '{}'",
                   value);
      o.style_size = static_cast<int>(v);
    } else if (key == "preview_image") {
      o.preview_image = value;
    } else {
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "style: unknown task option `{}`; valid: {}", key,
                  kOptionKeys);
    }
  }
  return o;
}

nlohmann::json StyleTransferOptions::to_json() const {
  return {{"style_image", style_image},
          {"loss_network", loss_network},
          {"loss_network_weights", loss_network_weights},
          {"content_layers", content_layers},
          {"style_layers", style_layers},
          {"content_weight", content_weight},
          {"style_weight", style_weight},
          {"tv_weight", tv_weight},
          {"style_size", style_size},
          {"preview_image", preview_image}};
}

StyleTransferTask::StyleTransferTask(std::string arch, nlohmann::json model_options,
                                     StyleTransferOptions options)
    : arch_(std::move(arch)),
      model_options_(std::move(model_options)),
      options_(std::move(options)) {}

StyleTransferTask::~StyleTransferTask() = default;

data::TrainingData StyleTransferTask::open_training_data(const data::DataRequest& given) const {
  // Checked before any image is read: a run without them would fail only at set-up.
  GPULAB_CHECK(!options_.style_image.empty(), ErrorKind::kInvalidArgument,
               "style transfer trains towards one style image: give --style-image FILE (task "
               "option style_image)");
  GPULAB_CHECK(fs::is_regular_file(options_.style_image), ErrorKind::kNotFound,
               "style image '{}' does not exist (task option style_image)", options_.style_image);
  GPULAB_CHECK(!options_.loss_network_weights.empty(), ErrorKind::kInvalidArgument,
               "style transfer measures its loss through a pretrained {}: give "
               "--loss-network-weights FILE (task option loss_network_weights), torchvision's "
               "weights saved as safetensors or MatConvNet's imagenet-vgg-verydeep-{}.mat "
               "(docs/style-transfer.md, 'Loss-network weights')",
               options_.loss_network, options_.loss_network == "vgg19" ? 19 : 16);
  GPULAB_CHECK(fs::is_regular_file(options_.loss_network_weights), ErrorKind::kNotFound,
               "loss-network weights '{}' do not exist (task option loss_network_weights)",
               options_.loss_network_weights);
  data::DataRequest request = given;
  data::DataOptions& o = request.options;
  GPULAB_CHECK(o.channels == 0 || o.channels == 3, ErrorKind::kInvalidArgument,
               "style transfer trains on RGB images; the data option channels must be 3, got {}",
               o.channels);
  o.channels = 3;
  if (o.height == 0) o.height = o.width = kDefaultImageSize;
  // pytorch/examples: Resize(image_size) then CenterCrop(image_size).
  if (o.transforms.empty()) {
    o.transforms = {{"resize_shorter", std::max(o.height, o.width)},
                    {"center_crop", fmt::format("{}x{}", o.height, o.width)}};
  }
  // The network sees pixels in 0-255 (x' = (x/255 - 0) / (1/255)), whatever
  // normalisation its initial weights record.
  request.weights_normalization = [](int64_t channels) -> std::optional<data::Normalization> {
    return data::Normalization{std::vector<double>(static_cast<size_t>(channels), 0.0),
                               std::vector<double>(static_cast<size_t>(channels), 1.0 / 255.0)};
  };
  return data::open_image_training_data(request, /*labelled=*/false);
}

models::ModelConfig StyleTransferTask::model_config(const DataShape& data) const {
  models::ModelConfig c;
  c.arch = arch_;
  c.num_classes = 3;  // output channels: an RGB image
  c.in_channels = data.channels;
  c.height = data.height;
  c.width = data.width;
  c.options = model_options_.is_object() ? model_options_ : nlohmann::json::object();
  return c;
}

void StyleTransferTask::setup(const TaskSetup& setup) {
  device_ = setup.device;
  normalization_ = setup.normalization;
  if (options_.style_image.empty()) return;  // a trained model: nothing to train towards
  std::vector<std::string> taps = options_.content_layers;
  taps.insert(taps.end(), options_.style_layers.begin(), options_.style_layers.end());
  auto network = std::make_shared<models::VggFeatures>(options_.loss_network, taps);
  network->load_weights(models::read_weight_file(options_.loss_network_weights));
  network->to(setup.device);
  network->eval();
  const at::Tensor style =
      load_image_pixels(options_.style_image, options_.style_size, setup.device);
  loss_ = std::make_unique<PerceptualLoss>(network,
                                           PerceptualLossOptions()
                                               .content_layers(options_.content_layers)
                                               .style_layers(options_.style_layers)
                                               .content_weight(options_.content_weight)
                                               .style_weight(options_.style_weight)
                                               .tv_weight(options_.tv_weight),
                                           style);
}

LossTerms StyleTransferTask::loss(const at::Tensor& output, const data::Batch& batch) const {
  GPULAB_CHECK(loss_ != nullptr, ErrorKind::kInvalidArgument,
               "style transfer's loss needs a style image and loss-network weights (task options "
               "style_image, loss_network_weights)");
  // The batch's input is the content image in 0-255 (open_training_data's
  // normalisation).
  const PerceptualLossTerms terms = (*loss_)(output, batch.input);
  return {terms.total,
          {{"content_loss", terms.content}, {"style_loss", terms.style}, {"tv_loss", terms.tv}}};
}

std::unique_ptr<Metrics> StyleTransferTask::metrics(Stage, c10::Device device) const {
  return std::make_unique<StyleMetrics>(device);
}

std::vector<ProgressColumn> StyleTransferTask::progress_columns() const {
  std::vector<ProgressColumn> columns = {
      {"Mini-batch", "Loss", Stage::kTraining, "loss", false},
      {"Content", "Loss", Stage::kTraining, "content_loss", false},
      {"Style", "Loss", Stage::kTraining, "style_loss", false}};
  if (options_.tv_weight > 0) columns.push_back({"TV", "Loss", Stage::kTraining, "tv_loss", false});
  columns.push_back({"Validation", "Loss", Stage::kValidation, "loss", false});
  return columns;
}

nlohmann::json StyleTransferTask::metadata() const {
  return {{"options", options_.to_json()},
          {"style_image", fs::path(options_.style_image).filename().string()}};
}

void StyleTransferTask::after_checkpoint(const CheckpointContext& context) {
  if (options_.preview_image.empty()) return;
  const at::Tensor pixels = data::decode_image_file(options_.preview_image, 3, 0, 0);
  const data::PixelAffine affine = data::pixel_affine(normalization_, device_);
  at::Tensor image;
  {
    torch::NoGradGuard no_grad;
    const bool was_training = context.network.is_training();
    context.network.eval();
    image = context.network.forward(affine.apply(pixels.unsqueeze(0).to(device_)));
    context.network.train(was_training);
  }
  image = image[0].clamp(0, 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous().cpu();
  const fs::path dir = fs::path(context.run_dir) / "previews";
  fs::create_directories(dir);
  data::write_image_file((dir / fmt::format("iteration-{:07d}.png", context.iteration)).string(),
                         image);
}

}  // namespace gpulab::tasks
