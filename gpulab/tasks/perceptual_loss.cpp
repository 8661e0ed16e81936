// Content, style and total-variation terms through the frozen VGG.
#include "gpulab/tasks/perceptual_loss.h"

#include <torch/torch.h>

#include <algorithm>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::tasks {
namespace {

void check_tapped(const models::VggFeatures& network, const std::vector<std::string>& layers,
                  const char* what) {
  const auto& taps = network.taps();
  for (const std::string& layer : layers) {
    GPULAB_CHECK(std::find(taps.begin(), taps.end(), layer) != taps.end(),
                 ErrorKind::kInvalidArgument,
                 "perceptual loss: {} layer '{}' is not a tap of the loss network (taps: {}); "
                 "build the VggFeatures with every content and style layer",
                 what, layer, fmt::join(taps, ", "));
  }
}

void check_image(const at::Tensor& x, const char* what) {
  GPULAB_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 3, ErrorKind::kInvalidArgument,
               "perceptual loss: {} must be RGB pixels [N, 3, H, W], got [{}]", what,
               x.defined() ? fmt::format("{}", fmt::join(x.sizes(), ", ")) : "undefined");
}

}  // namespace

at::Tensor gram_matrix(const at::Tensor& features) {
  GPULAB_CHECK(features.dim() == 4, ErrorKind::kInvalidArgument,
               "gram_matrix: expected features [N, C, H, W], got [{}]",
               fmt::join(features.sizes(), ", "));
  const int64_t n = features.size(0), c = features.size(1);
  const int64_t hw = features.size(2) * features.size(3);
  const at::Tensor f = features.reshape({n, c, hw});
  return torch::bmm(f, f.transpose(1, 2)) / static_cast<double>(c * hw);
}

PerceptualLoss::PerceptualLoss(std::shared_ptr<models::VggFeatures> network,
                               PerceptualLossOptions options, const at::Tensor& style_image)
    : network_(std::move(network)), options_(std::move(options)) {
  GPULAB_CHECK(network_ != nullptr, ErrorKind::kInvalidArgument,
               "perceptual loss: no loss network");
  // Layer names are case-insensitive, as VggFeatures' taps (which it keeps in lower case).
  for (auto* layers : {&options_.content_layers(), &options_.style_layers()}) {
    for (std::string& layer : *layers) layer = core::to_lower(layer);
  }
  check_tapped(*network_, options_.content_layers(), "content");
  check_tapped(*network_, options_.style_layers(), "style");
  for (double w : {options_.content_weight(), options_.style_weight(), options_.tv_weight()}) {
    GPULAB_CHECK(w >= 0, ErrorKind::kInvalidArgument,
                 "perceptual loss: weights must be >= 0, got content {}, style {}, tv {}",
                 options_.content_weight(), options_.style_weight(), options_.tv_weight());
  }
  check_image(style_image, "the style image");
  GPULAB_CHECK(style_image.size(0) == 1, ErrorKind::kInvalidArgument,
               "perceptual loss: one style image [1, 3, H, W], got a batch of {}",
               style_image.size(0));
  if (options_.style_layers().empty()) return;
  torch::NoGradGuard no_grad;
  auto features = network_->forward(style_image);
  for (const std::string& layer : options_.style_layers()) {
    style_grams_[layer] = gram_matrix(features.at(layer));
  }
}

PerceptualLossTerms PerceptualLoss::operator()(const at::Tensor& output,
                                               const at::Tensor& content) const {
  check_image(output, "the output");
  check_image(content, "the content batch");
  GPULAB_CHECK(output.sizes() == content.sizes(), ErrorKind::kInvalidArgument,
               "perceptual loss: output [{}] and content batch [{}] differ in shape",
               fmt::join(output.sizes(), ", "), fmt::join(content.sizes(), ", "));
  const at::Tensor zero = torch::zeros({}, output.options().requires_grad(false));
  PerceptualLossTerms terms{zero, zero, zero, zero};

  // A term weighted 0 is 0 without running its part of the network.
  const bool content_term = !options_.content_layers().empty() && options_.content_weight() > 0;
  const bool style_term = !style_grams_.empty() && options_.style_weight() > 0;
  std::map<std::string, torch::Tensor> out_features;
  if (content_term || style_term) out_features = network_->forward(output);

  if (content_term) {
    std::map<std::string, torch::Tensor> content_features;
    {
      torch::NoGradGuard no_grad;
      content_features = network_->forward(content);
    }
    at::Tensor sum = zero;
    for (const std::string& layer : options_.content_layers()) {
      sum = sum + (out_features.at(layer) - content_features.at(layer)).pow(2).mean();
    }
    terms.content = sum * options_.content_weight();
  }
  if (style_term) {
    at::Tensor sum = zero;
    for (const std::string& layer : options_.style_layers()) {
      // [N, C, C] - [1, C, C]: the style's Gram matrix for every image.
      sum = sum + (gram_matrix(out_features.at(layer)) - style_grams_.at(layer)).pow(2).mean();
    }
    terms.style = sum * options_.style_weight();
  }
  if (options_.tv_weight() > 0) {
    using torch::indexing::None;
    using torch::indexing::Slice;
    const at::Tensor dy = output.index({Slice(), Slice(), Slice(1, None)}) -
                          output.index({Slice(), Slice(), Slice(None, -1)});
    const at::Tensor dx = output.index({Slice(), Slice(), Slice(), Slice(1, None)}) -
                          output.index({Slice(), Slice(), Slice(), Slice(None, -1)});
    terms.tv = (dy.pow(2).mean() + dx.pow(2).mean()) * options_.tv_weight();
  }
  terms.total = terms.content + terms.style + terms.tv;
  return terms;
}

}  // namespace gpulab::tasks
