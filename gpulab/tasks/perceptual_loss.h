// The perceptual loss of fast neural style transfer (Johnson et al. 2016):
// content (feature reconstruction), style (Gram matrices) and total-variation
// terms measured through a frozen VGG (models::VggFeatures).
//
// How it matches the two reference implementations, for the same layers,
// weights and loss-network weights:
//   pytorch/examples fast_neural_style (neural_style.py, utils.py, vgg.py):
//     the defaults here are its recipe: VGG-16 (torchvision ImageNet weights),
//     content relu2_2, style relu1_2, relu2_2, relu3_3, relu4_3, weights 1e5
//     and 1e10, no TV term. Its content loss is content_weight *
//     mse_loss(F(y), F(x)) and its style loss style_weight * sum over layers
//     of mse_loss(gram(F(y)), gram_s[:n]) with the style image's Gram matrices
//     repeated over the batch: both exactly the means below. Its VGG input is
//     (x / 255 - ImageNet mean) / ImageNet std, i.e. VggFeatures' default
//     normalisation (x - 255 mean) / (255 std), equal up to float rounding.
//   lengstrom/fast-style-transfer (src/optimize.py, src/vgg.py): content is
//     content_weight * 2 l2_loss(F(y) - F(x)) / (size per image * batch) =
//     the mean squared difference; style per layer 2 l2_loss(G - S) / S.size
//     summed and divided by the batch = the mean over [N, C, C] (its Gram is
//     F^T F / (H W C), as gram_matrix below); TV 2 (x_tv / x_size + y_tv /
//     y_size) / batch = the tv formula below. So its recipe is these options
//     with VGG-19 weights from imagenet-vgg-verydeep-19.mat (its
//     vgg.preprocess subtracts that file's average pixel 123.68, 116.779,
//     103.939 with std 1, which VggFeatures reads from the file),
//     content_layers {relu4_2}, style_layers {relu1_1, relu2_1, relu3_1,
//     relu4_1, relu5_1}, content 7.5, style 100, tv 200.
// Where they differ from this class: lengstrom's max-pools pad ('SAME'), so
// an odd-sized map before a pool (e.g. a style image whose sides are not
// multiples of 2^pools) keeps one more row/column there than torchvision's
// floor mode used here. pytorch/examples'
// normalize_batch divides its argument by 255 in place; this class never
// changes its inputs. pytorch/examples resizes the style image to a square
// style_size (a task option here, not this class's job). Neither reference
// weights layers individually; nor does this class.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/models/vgg_features.h"

namespace gpulab::tasks {

// Chained setters: PerceptualLossOptions().content_layers({"relu4_2"}).tv_weight(200).
// Layer names are models::vgg_layer_names' (case-insensitive). Weights are >= 0 and multiply the
// (unweighted) means below.
struct PerceptualLossOptions {
  GPULAB_ARG(std::vector<std::string>, content_layers) = {"relu2_2"};
  GPULAB_ARG(std::vector<std::string>, style_layers) = {"relu1_2", "relu2_2", "relu3_3", "relu4_3"};
  GPULAB_ARG(double, content_weight) = 1e5;
  GPULAB_ARG(double, style_weight) = 1e10;
  GPULAB_ARG(double, tv_weight) = 0;
};

// 0-dim float tensors on the output's device, already weighted; total = content
// + style + tv. A term whose weight is 0 (or whose layer list is empty) is 0.
struct PerceptualLossTerms {
  at::Tensor content, style, tv, total;
};

// Gram matrix of features [N, C, H, W] -> [N, C, C] = F F^T / (C H W), F the
// features as [N, C, H W] (pytorch/examples' gram_matrix; lengstrom divides by
// the same H W C). Throws Error(kInvalidArgument) for another rank.
at::Tensor gram_matrix(const at::Tensor& features);

// Non-copyable. operator() is const and changes no state: one instance may be
// called from several threads at once (each on its own tensors).
class PerceptualLoss {
 public:
  // `network`: on the target device with its weights loaded; its taps must
  // include every content and style layer (Error(kInvalidArgument) naming the
  // missing one otherwise). style_image [1, 3, H, W] float RGB 0..255 on the
  // network's device: its Gram matrices are computed once, here, without
  // gradient. Throws Error(kInvalidArgument) for a negative weight or a style
  // image of another shape.
  PerceptualLoss(std::shared_ptr<models::VggFeatures> network, PerceptualLossOptions options,
                 const at::Tensor& style_image);
  PerceptualLoss(const PerceptualLoss&) = delete;
  PerceptualLoss& operator=(const PerceptualLoss&) = delete;

  // output: the style network's output [N, 3, H, W] (0..255, gradient flows);
  // content: its input batch [N, 3, H, W] 0..255, same shape (its features are
  // computed under NoGradGuard). With F a layer's features and G = gram_matrix:
  //   content = cw * sum over content layers of mean((F(out) - F(content))^2)
  //   style   = sw * sum over style layers of mean((G(F(out)) - G_style)^2)
  //             (G_style [1, C, C] broadcast over the batch)
  //   tv      = tvw * (mean((out[.., 1:, :] - out[.., :-1, :])^2)
  //                    + mean((out[.., :, 1:] - out[.., :, :-1])^2))
  // Means are over every element, batch included. No host synchronisation
  // (no .item()) inside: only shape checks, which read sizes.
  PerceptualLossTerms operator()(const at::Tensor& output, const at::Tensor& content) const;

  const PerceptualLossOptions& options() const { return options_; }
  // The style image's Gram matrix [1, C, C] per style layer, by name.
  const std::map<std::string, at::Tensor>& style_grams() const { return style_grams_; }

 private:
  std::shared_ptr<models::VggFeatures> network_;
  PerceptualLossOptions options_;
  std::map<std::string, at::Tensor> style_grams_;
};

}  // namespace gpulab::tasks
