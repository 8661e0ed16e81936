// DeepLab v3+ layers, MATLAB's dilation placement and backbone weight loading.
#include "gpulab/models/deeplabv3plus.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/resnet.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace F = torch::nn::functional;
namespace {

constexpr int64_t kAsppChannels = 256;
constexpr int64_t kLowLevelChannels = 48;
constexpr int64_t kMinInputSize = 16;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t dilation = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel)
                        .stride(stride)
                        .padding(kernel == 1 ? 0 : dilation)
                        .dilation(dilation)
                        .bias(false));
}

// conv + BN + ReLU as one Sequential: names .0 (conv) and .1 (bn).
nn::Sequential conv_bn_relu(int64_t in, int64_t out, int64_t kernel, int64_t dilation = 1) {
  return nn::Sequential(conv(in, out, kernel, 1, dilation), SyncBatchNorm2d(out),
                        nn::Functional(torch::relu));
}

// Crops the centre `height` x `width` of [N, C, h, w] (h >= height, w >=
// width), as MATLAB's crop2dLayer('centercrop'): the excess split with the
// odd pixel at the bottom/right.
torch::Tensor centre_crop(const torch::Tensor& x, int64_t height, int64_t width) {
  const int64_t top = (x.size(2) - height) / 2;
  const int64_t left = (x.size(3) - width) / 2;
  return x.narrow(2, top, height).narrow(3, left, width);
}

// Bilinear x`factor` (align_corners false), then the centre crop: MATLAB's
// transposed-conv upsampler followed by its crop layer.
torch::Tensor upsample_to(const torch::Tensor& x, int64_t factor, int64_t height, int64_t width) {
  auto up =
      F::interpolate(x, F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{x.size(2) * factor, x.size(3) * factor})
                            .mode(torch::kBilinear)
                            .align_corners(false));
  return centre_crop(up, height, width);
}

// `unknown_ok`: a zero height or width passes (a size not known yet).
void check_input_size(int64_t height, int64_t width, const char* what, bool unknown_ok = false) {
  auto fits = [unknown_ok](int64_t n) { return n >= kMinInputSize || (unknown_ok && n == 0); };
  GPULAB_CHECK(fits(height) && fits(width), ErrorKind::kInvalidArgument,
               "DeepLab v3+ needs {} height and width of at least {} pixels; got {}x{}", what,
               kMinInputSize, height, width);
}

// (stride, first-block conv1 dilation, dilation of the rest) of layer3/layer4.
struct StageLayout {
  int64_t stride, entry_dilation, dilation;
};

}  // namespace

ResNet18BackboneImpl::ResNet18BackboneImpl(int64_t in_channels, int64_t output_stride) {
  // MATLAB's res5a: the stride goes, the first 3x3 keeps the dilation the
  // stage before had and only the second one takes the new one.
  const StageLayout layer3 = output_stride == 8 ? StageLayout{1, 1, 2} : StageLayout{2, 1, 1};
  const StageLayout layer4 = output_stride == 8 ? StageLayout{1, 2, 4} : StageLayout{1, 1, 2};
  auto stage = [](int64_t in, int64_t planes, const StageLayout& s) {
    return nn::Sequential(BasicBlock(in, planes, s.stride, s.entry_dilation, s.dilation),
                          BasicBlock(planes, planes, 1, s.dilation, s.dilation));
  };
  conv1_ = register_module(
      "conv1", nn::Conv2d(nn::Conv2dOptions(in_channels, 64, 7).stride(2).padding(3).bias(false)));
  bn1_ = register_module("bn1", SyncBatchNorm2d(64));
  layer1_ = register_module("layer1", stage(64, 64, {1, 1, 1}));
  layer2_ = register_module("layer2", stage(64, 128, {2, 1, 1}));
  layer3_ = register_module("layer3", stage(128, 256, layer3));
  layer4_ = register_module("layer4", stage(256, 512, layer4));
}

ResNet18BackboneImpl::Features ResNet18BackboneImpl::forward(torch::Tensor x) {
  x = torch::max_pool2d(bn1_->forward(conv1_->forward(x)).relu_(), 3, 2, 1);
  Features f;
  f.low_level = layer1_->forward(x);
  f.high_level = layer4_->forward(layer3_->forward(layer2_->forward(f.low_level)));
  return f;
}

AsppImpl::AsppImpl(int64_t in_channels, const std::vector<int64_t>& rates) {
  nn::ModuleList convs;
  convs_.push_back(conv_bn_relu(in_channels, kAsppChannels, 1));
  for (int64_t rate : rates) convs_.push_back(conv_bn_relu(in_channels, kAsppChannels, 3, rate));
  for (const auto& c : convs_) convs->push_back(c);
  register_module("convs", convs);
  project_ = register_module(
      "project",
      conv_bn_relu(kAsppChannels * static_cast<int64_t>(convs_.size()), kAsppChannels, 1));
}

torch::Tensor AsppImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> branches;
  for (auto& c : convs_) branches.push_back(c->forward(x));
  return project_->forward(torch::cat(branches, 1));
}

DeepLabV3Plus::DeepLabV3Plus(const ModelConfig& config) {
  output_stride_ = config.options.value("output_stride", int64_t{16});
  GPULAB_CHECK(output_stride_ == 16 || output_stride_ == 8, ErrorKind::kInvalidArgument,
               "deeplabv3plus: output_stride {} is not supported; valid: 16 (MATLAB's "
               "DownsamplingFactor default), 8",
               output_stride_);
  check_input_size(config.height, config.width, "a configured input", /*unknown_ok=*/true);
  const std::vector<int64_t> rates =
      output_stride_ == 16 ? std::vector<int64_t>{6, 12, 18} : std::vector<int64_t>{12, 24, 36};
  backbone_ = register_module("backbone", ResNet18Backbone(config.in_channels, output_stride_));
  aspp_ = register_module("aspp", Aspp(512, rates));
  low_level_ = register_module("low_level", conv_bn_relu(64, kLowLevelChannels, 1));
  decoder_ =
      register_module("decoder", nn::Sequential(conv(kAsppChannels + kLowLevelChannels, 256, 3),
                                                SyncBatchNorm2d(256), nn::Functional(torch::relu),
                                                conv(256, 256, 3), SyncBatchNorm2d(256),
                                                nn::Functional(torch::relu)));
  scorer_ = register_module("scorer", conv(256, config.num_classes, 1));

  // torchvision's schemes: its ResNet's for the backbone; PyTorch's defaults
  // for the rest, as torchvision's DeepLab heads (a kaiming-normal fan_out
  // scorer starts with logits of a few units and a cross-entropy near 6).
  for (auto& module : backbone_->modules(/*include_self=*/false)) {
    if (auto* c = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<SyncBatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

torch::Tensor DeepLabV3Plus::forward(torch::Tensor x) {
  GPULAB_CHECK(x.dim() == 4, ErrorKind::kInvalidArgument,
               "DeepLab v3+ takes an [N, C, H, W] batch; got a tensor of shape [{}]",
               fmt::join(x.sizes(), ", "));
  const int64_t height = x.size(2), width = x.size(3);
  check_input_size(height, width, "input");
  auto features = backbone_->forward(x);
  auto low = low_level_->forward(features.low_level);
  // 4 * ceil(H/16) >= ceil(H/4) (and 2 * ceil(H/8) at stride 8): the
  // upsampled map always covers the low-level one, so a crop suffices.
  auto high = upsample_to(aspp_->forward(features.high_level), output_stride_ / 4, low.size(2),
                          low.size(3));
  auto logits = scorer_->forward(decoder_->forward(torch::cat({high, low}, 1)));
  return upsample_to(logits, 4, height, width);
}

void load_resnet18_backbone(DeepLabV3Plus& network,
                            const std::map<std::string, torch::Tensor>& torchvision_state,
                            const std::string& source) {
  std::map<std::string, torch::Tensor> body;
  for (const auto& [name, tensor] : torchvision_state) {
    if (name.rfind("fc.", 0) != 0) body[name] = tensor;  // the ImageNet classifier
  }
  load_state_dict(*network.backbone(), body, source);
}

}  // namespace gpulab::models
