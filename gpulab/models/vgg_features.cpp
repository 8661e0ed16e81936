// VGG features as a loss network: torchvision's layer list, the taps, and
// loading (and checking) the weights of the files people have.
#include "gpulab/models/vgg_features.h"

#include <torch/torch.h>

#include <regex>
#include <set>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace {

// torchvision.models.vgg.cfgs as convolutions per stage; the stages have
// 1, 2, 4, 8, 8 times the first conv's width.
std::vector<int> convs_per_stage(int depth) {
  switch (depth) {
    case 11:
      return {1, 1, 2, 2, 2};
    case 13:
      return {2, 2, 2, 2, 2};
    case 16:
      return {2, 2, 3, 3, 3};
    case 19:
      return {2, 2, 4, 4, 4};
  }
  GPULAB_FAIL(ErrorKind::kInternal, "vgg features: no configuration for depth {}", depth);
}
constexpr int64_t kStageWidth[] = {1, 2, 4, 8, 8};

std::vector<std::string> layer_names(int depth) {
  std::vector<std::string> names;
  const std::vector<int> plan = convs_per_stage(depth);
  for (size_t stage = 0; stage < plan.size(); ++stage) {
    for (int j = 1; j <= plan[stage]; ++j) {
      names.push_back(fmt::format("conv{}_{}", stage + 1, j));
      names.push_back(fmt::format("relu{}_{}", stage + 1, j));
    }
    names.push_back(fmt::format("pool{}", stage + 1));
  }
  return names;
}

// features indices of the convolutions of torchvision's vgg<depth> (no batch norm).
std::set<int64_t> conv_indices(int depth) {
  std::set<int64_t> indices;
  const std::vector<std::string> names = layer_names(depth);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("conv", 0) == 0) indices.insert(static_cast<int64_t>(i));
  }
  return indices;
}

int depth_of(const std::string& arch) {
  const std::string a = core::to_lower(arch);
  if (a == "vgg16") return 16;
  if (a == "vgg19") return 19;
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "vgg features: unknown loss network '{}'; valid: vgg16, vgg19", arch);
}

std::string weights_hint(const std::string& arch) {
  return fmt::format(
      "give {} weights (torchvision's {} state dict, or MatConvNet's "
      "imagenet-vgg-verydeep-{}.mat) or choose the loss network that fits the file",
      arch, arch, arch.substr(3));
}

// The architecture a file's metadata states (gpulab model files, MatConvNet).
void check_stated_arch(const ModelMetadata& metadata, const std::string& arch,
                       const std::string& file) {
  const std::string stated = core::to_lower(metadata.config.arch);
  if (stated.empty()) return;
  GPULAB_CHECK(stated.rfind("vgg", 0) == 0, ErrorKind::kInvalidArgument,
               "'{}' holds a {} network, not a VGG; the loss network is {}: {}", file, stated, arch,
               weights_hint(arch));
  const nlohmann::json& options = metadata.config.options;
  const bool batch_norm =
      core::ends_with(stated, "_bn") || (options.is_object() && options.value("batch_norm", false));
  GPULAB_CHECK(!batch_norm, ErrorKind::kInvalidArgument,
               "'{}' holds a VGG with batch norm ({}); the loss network is torchvision's {} "
               "without batch norm: {}",
               file, stated, arch, weights_hint(arch));
  GPULAB_CHECK(stated == arch, ErrorKind::kInvalidArgument,
               "'{}' holds {} weights, but the loss network is {}: {}", file, stated, arch,
               weights_hint(arch));
}

const at::Tensor* find_tensor(const WeightFile& weights, const std::string& name) {
  auto it = weights.tensors.find(name);
  return it == weights.tensors.end() ? nullptr : &it->second;
}

const std::vector<double> kImageNetMean = {0.485 * 255, 0.456 * 255, 0.406 * 255};
const std::vector<double> kImageNetStd = {0.229 * 255, 0.224 * 255, 0.225 * 255};

}  // namespace

std::vector<std::string> vgg_layer_names(const std::string& arch) {
  return layer_names(depth_of(arch));
}

VggFeatures::VggFeatures(const std::string& arch, const std::vector<std::string>& taps,
                         int64_t width)
    : arch_("vgg" + std::to_string(depth_of(arch))), names_(vgg_layer_names(arch_)) {
  GPULAB_CHECK(width > 0, ErrorKind::kInvalidArgument,
               "vgg features: width must be positive, got {}", width);
  GPULAB_CHECK(!taps.empty(), ErrorKind::kInvalidArgument,
               "vgg features: no layers to tap; valid for {}: {}", arch_, fmt::join(names_, ", "));
  std::set<int64_t> tapped;
  for (const std::string& tap : taps) {
    auto it = std::find(names_.begin(), names_.end(), core::to_lower(tap));
    GPULAB_CHECK(it != names_.end(), ErrorKind::kInvalidArgument, "{} has no layer '{}'; valid: {}",
                 arch_, tap, fmt::join(names_, ", "));
    tapped.insert(it - names_.begin());
  }
  deepest_ = *tapped.rbegin();
  is_tap_.assign(deepest_ + 1, false);
  for (int64_t i : tapped) {
    is_tap_[i] = true;
    taps_.push_back(names_[i]);
  }

  features_ = register_module("features", std::make_shared<nn::Module>());
  int64_t channels = 3;
  int stage = 0;
  for (int64_t i = 0; i <= deepest_; ++i) {
    if (names_[i].rfind("pool", 0) == 0) ++stage;
    if (names_[i].rfind("conv", 0) != 0) continue;
    const int64_t out = kStageWidth[stage] * width;
    auto conv = nn::Conv2d(nn::Conv2dOptions(channels, out, 3).padding(1));
    features_->register_module(std::to_string(i), conv);
    convs_.emplace(i, conv);
    channels = out;
  }
  for (auto& p : parameters()) p.requires_grad_(false);

  mean_buffer_ = register_buffer("mean", torch::zeros({1, 3, 1, 1}));
  std_buffer_ = register_buffer("std", torch::ones({1, 3, 1, 1}));
  set_normalization(kImageNetMean, kImageNetStd);
}

void VggFeatures::set_normalization(const std::vector<double>& mean,
                                    const std::vector<double>& stdev) {
  torch::NoGradGuard no_grad;
  mean_ = mean;
  std_ = stdev;
  mean_buffer_.copy_(torch::tensor(mean, torch::kFloat64).reshape({1, 3, 1, 1}));
  std_buffer_.copy_(torch::tensor(stdev, torch::kFloat64).reshape({1, 3, 1, 1}));
}

void VggFeatures::load_weights(const WeightFile& weights) {
  const std::string& file = weights.path;
  if (weights.metadata) check_stated_arch(*weights.metadata, arch_, file);

  // Which VGG the tensors are: torchvision's names place the convs at
  // configuration-specific indices (vgg16 ... 14, 17; vgg19 ... 14, 16).
  static const std::regex kFeature(R"(features\.(\d+)\.(\w+))");
  std::set<int64_t> file_convs;
  bool batch_norm = false;
  for (const auto& [name, tensor] : weights.tensors) {
    std::smatch m;
    if (!std::regex_match(name, m, kFeature)) continue;
    if (m[2] == "running_mean") batch_norm = true;
    if (m[2] == "weight" && tensor.dim() == 4) file_convs.insert(std::stoll(m[1]));
  }
  GPULAB_CHECK(!batch_norm, ErrorKind::kInvalidArgument,
               "'{}' holds a VGG with batch norm (features.<i>.running_mean); the loss network is "
               "torchvision's {} without batch norm: {}",
               file, arch_, weights_hint(arch_));
  for (int depth : {11, 13, 16, 19}) {
    const std::string other = "vgg" + std::to_string(depth);
    GPULAB_CHECK(other == arch_ || file_convs != conv_indices(depth), ErrorKind::kInvalidArgument,
                 "'{}' holds the {} convolutions of a {} (features.{}), but the loss network is "
                 "{}: {}",
                 file, file_convs.size(), other, fmt::join(file_convs, ", "), arch_,
                 weights_hint(arch_));
  }

  // Every conv up to the deepest tap, shapes chaining from 3 input channels.
  std::map<int64_t, std::pair<at::Tensor, at::Tensor>> loaded;
  int64_t channels = 3;
  for (const auto& [i, conv] : convs_) {
    const std::string w_name = fmt::format("features.{}.weight", i);
    const std::string b_name = fmt::format("features.{}.bias", i);
    const at::Tensor* w = find_tensor(weights, w_name);
    const at::Tensor* b = find_tensor(weights, b_name);
    GPULAB_CHECK(w != nullptr && b != nullptr, ErrorKind::kCorruptData,
                 "'{}' has no {} ({}'s {} weights, needed for the tap {}); expected torchvision's "
                 "{} names features.<i>.weight/bias{}",
                 file, w == nullptr ? w_name : b_name, arch_, names_[i], names_[deepest_], arch_,
                 file_convs.empty() ? "; the file has no features tensors at all" : "");
    GPULAB_CHECK(w->dim() == 4 && w->size(1) == channels && w->size(2) == 3 && w->size(3) == 3,
                 ErrorKind::kCorruptData,
                 "'{}': {} ({}) has shape [{}], expected [Cout, {}, 3, 3] (3x3 kernels whose "
                 "input is the previous conv's output)",
                 file, w_name, names_[i], fmt::join(w->sizes(), ", "), channels);
    GPULAB_CHECK(b->dim() == 1 && b->size(0) == w->size(0), ErrorKind::kCorruptData,
                 "'{}': {} has shape [{}], expected [{}]", file, b_name,
                 fmt::join(b->sizes(), ", "), w->size(0));
    channels = w->size(0);
    loaded.emplace(i, std::make_pair(*w, *b));
  }

  std::vector<double> mean = kImageNetMean, stdev = kImageNetStd;
  if (weights.metadata && (!weights.metadata->mean.empty() || !weights.metadata->std.empty())) {
    const ModelMetadata& m = *weights.metadata;
    GPULAB_CHECK(m.mean.size() == 3 && m.std.size() == 3, ErrorKind::kCorruptData,
                 "'{}': the normalisation of an RGB VGG needs 3 means and 3 stds, found {} and {}",
                 file, m.mean.size(), m.std.size());
    for (size_t c = 0; c < 3; ++c) {
      GPULAB_CHECK(m.std[c] > 0, ErrorKind::kCorruptData, "'{}': normalisation std {} is not > 0",
                   file, m.std[c]);
      mean[c] = m.mean[c] * 255;  // metadata is in [0, 1] pixel units
      stdev[c] = m.std[c] * 255;
    }
  }

  torch::NoGradGuard no_grad;
  for (auto& [i, tensors] : loaded) {
    nn::Conv2d& conv = convs_.at(i);
    const at::Tensor& w = tensors.first;
    if (!conv->weight.sizes().equals(w.sizes())) {
      // Another width than the constructor's: a conv of the file's shape, where the old one was.
      auto replacement = nn::Conv2d(nn::Conv2dOptions(w.size(1), w.size(0), 3).padding(1));
      replacement->to(conv->weight.device(), conv->weight.scalar_type());
      for (auto& p : replacement->parameters()) p.requires_grad_(false);
      features_->replace_module(std::to_string(i), replacement);
      conv = replacement;
    }
    conv->weight.copy_(w);
    conv->bias.copy_(tensors.second);
  }
  set_normalization(mean, stdev);
}

torch::Tensor VggFeatures::normalize(const torch::Tensor& x) const {
  return (x - mean_buffer_) / std_buffer_;
}

std::map<std::string, torch::Tensor> VggFeatures::forward(const torch::Tensor& x) {
  GPULAB_CHECK(x.dim() == 4 && x.size(1) == 3, ErrorKind::kInvalidArgument,
               "{} features: expected RGB pixels [N, 3, H, W], got [{}]", arch_,
               fmt::join(x.sizes(), ", "));
  const int64_t pools = std::count_if(names_.begin(), names_.begin() + deepest_,
                                      [](const std::string& n) { return n[0] == 'p'; });
  GPULAB_CHECK(x.size(2) >> pools >= 1 && x.size(3) >> pools >= 1, ErrorKind::kInvalidArgument,
               "{} features: {} needs an input of at least {}x{} pixels ({} 2x2 max-pools), got "
               "{}x{}",
               arch_, names_[deepest_], 1 << pools, 1 << pools, pools, x.size(2), x.size(3));
  std::map<std::string, torch::Tensor> out;
  torch::Tensor h = normalize(x);
  for (int64_t i = 0; i <= deepest_; ++i) {
    switch (names_[i][0]) {
      case 'c':
        h = convs_.at(i)->forward(h);
        break;
      case 'r':
        h = torch::relu(h);  // not in place: a conv tap keeps its value
        break;
      default:
        h = torch::max_pool2d(h, {2, 2}, {2, 2});
    }
    if (is_tap_[i]) out.emplace(names_[i], h);
  }
  return out;
}

}  // namespace gpulab::models
