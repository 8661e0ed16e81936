// PerceptualLoss: the Gram matrix, the terms' invariants (zero style loss on
// the style image, zero TV on a flat image, gradients to the output only) and
// parity with pytorch/examples' and lengstrom's formulas on formula-filled
// torchvision VGG weights (checked-in fixture from
// fixtures/perceptual_loss_parity.py).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/models/vgg_features.h"
#include "gpulab/tasks/perceptual_loss.h"
#include "tests/support/cuda_test.h"

namespace gpulab::tasks {
namespace {

const std::string kPlossFixture =
    std::string(GPULAB_SOURCE_DIR) + "/tests/tasks/fixtures/perceptual_loss_parity.json";

// pytorch/examples' default layers, at a small width for speed.
std::shared_ptr<models::VggFeatures> ploss_network(int64_t width = 4) {
  torch::manual_seed(7);
  return std::make_shared<models::VggFeatures>(
      "vgg16", std::vector<std::string>{"relu1_2", "relu2_2", "relu3_3", "relu4_3"}, width);
}

at::Tensor ploss_pixels(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::rand(shape) * 255;
}

double ploss_value(const at::Tensor& t) {
  EXPECT_EQ(t.dim(), 0);
  return t.item<double>();
}

Error ploss_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorKind::kInternal, "no error was thrown");
}

// The script's hash: 2 frac(43758.5453 sin(0.1 i + 0.7 k)) - 1, in float64.
at::Tensor ploss_hash(int64_t n, int64_t k) {
  auto x = torch::sin(torch::arange(n, torch::kFloat64) * 0.1 + 0.7 * k) * 43758.5453;
  return (x - torch::floor(x)) * 2 - 1;
}

at::Tensor ploss_image(const std::vector<int64_t>& shape, int64_t k) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return (255 * (ploss_hash(n, k) + 1) / 2).to(torch::kFloat32).reshape(shape);
}

// The script's formula weights for the network's own tensors (torchvision's
// shapes and names up to its deepest tap), by sorted name.
std::map<std::string, at::Tensor> ploss_formula_weights(const models::VggFeatures& network) {
  std::map<std::string, at::Tensor> refs, out;
  for (const auto& p : network.named_parameters()) refs[p.key()] = p.value();
  int64_t k = 0;
  for (const auto& [name, ref] : refs) {
    const int64_t n = ref.numel();
    const at::Tensor base = ploss_hash(n, k++);
    const at::Tensor v =
        ref.dim() >= 2 ? base * std::sqrt(6.0 / static_cast<double>(n / ref.size(0))) : 0.05 * base;
    out[name] = v.to(torch::kFloat32).reshape(ref.sizes());
  }
  return out;
}

double ploss_relative(double value, double reference) {
  return std::abs(value - reference) / std::max(std::abs(reference), 1e-30);
}

}  // namespace

TEST(PerceptualLossTest, OptionsHaveThePytorchExamplesDefaultsAndChain) {
  PerceptualLossOptions defaults;
  EXPECT_EQ(defaults.content_layers(), (std::vector<std::string>{"relu2_2"}));
  EXPECT_EQ(defaults.style_layers(),
            (std::vector<std::string>{"relu1_2", "relu2_2", "relu3_3", "relu4_3"}));
  EXPECT_EQ(defaults.content_weight(), 1e5);
  EXPECT_EQ(defaults.style_weight(), 1e10);
  EXPECT_EQ(defaults.tv_weight(), 0);
  auto o = PerceptualLossOptions().content_layers({"relu4_2"}).style_weight(1e2).tv_weight(2e2);
  EXPECT_EQ(o.content_layers(), (std::vector<std::string>{"relu4_2"}));
  EXPECT_EQ(o.style_weight(), 1e2);
  EXPECT_EQ(o.tv_weight(), 2e2);
  EXPECT_EQ(o.content_weight(), 1e5);
}

TEST(PerceptualLossTest, GramMatrixOfAHandComputedTensor) {
  // One image, C = 2, H = 1, W = 2: F = [[1, 2], [3, 4]], F F^T = [[5, 11], [11, 25]],
  // divided by C H W = 4. The second image is twice the first: four times the Gram.
  const auto f = torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({1, 2, 1, 2});
  const auto g = gram_matrix(torch::cat({f, 2 * f}));
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{2, 2, 2}));
  const auto expected = torch::tensor({1.25f, 2.75f, 2.75f, 6.25f}).reshape({2, 2});
  EXPECT_TRUE(torch::allclose(g[0], expected));
  EXPECT_TRUE(torch::allclose(g[1], 4 * expected));
  // H and W play the same part: [1, 2, 2, 1] gives the same matrix.
  EXPECT_TRUE(torch::allclose(gram_matrix(f.reshape({1, 2, 2, 1}))[0], expected));
  EXPECT_EQ(ploss_error([&] { gram_matrix(f[0]); }).kind(), ErrorKind::kInvalidArgument);
}

TEST(PerceptualLossTest, StyleTermIsZeroWhenTheOutputIsTheStyleImage) {
  auto network = ploss_network();
  const auto style = ploss_pixels({1, 3, 32, 32}, 1);
  const auto content = ploss_pixels({1, 3, 32, 32}, 2);
  PerceptualLoss loss(network, PerceptualLossOptions(), style);
  PerceptualLossTerms at_style = loss(style, content);
  EXPECT_EQ(ploss_value(at_style.style), 0);
  EXPECT_GT(ploss_value(at_style.content), 0);
  EXPECT_EQ(ploss_value(at_style.tv), 0);  // tv_weight 0 by default
  // And the content term is zero at the content image.
  PerceptualLossTerms at_content = loss(content, content);
  EXPECT_EQ(ploss_value(at_content.content), 0);
  EXPECT_GT(ploss_value(at_content.style), 0);
  EXPECT_DOUBLE_EQ(ploss_value(at_content.total), ploss_value(at_content.style));
}

TEST(PerceptualLossTest, GradientsReachTheOutputNotTheLossNetworkOrTheContent) {
  auto network = ploss_network();
  PerceptualLoss loss(network, PerceptualLossOptions().tv_weight(1),
                      ploss_pixels({1, 3, 24, 40}, 1));
  const auto output = ploss_pixels({2, 3, 32, 32}, 2).requires_grad_();
  const auto content = ploss_pixels({2, 3, 32, 32}, 3).requires_grad_();
  PerceptualLossTerms terms = loss(output, content);
  EXPECT_TRUE(terms.total.requires_grad());
  terms.total.backward();
  ASSERT_TRUE(output.grad().defined());
  EXPECT_GT(output.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(content.grad().defined());
  for (const auto& p : network->named_parameters()) {
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
    EXPECT_FALSE(p.value().grad().defined()) << p.key();
  }
  for (const auto& [layer, gram] : loss.style_grams()) EXPECT_FALSE(gram.requires_grad()) << layer;
}

TEST(PerceptualLossTest, TotalVariationIsZeroForAConstantImageAndLengstromsForARamp) {
  auto network = ploss_network();
  PerceptualLoss loss(network, PerceptualLossOptions().tv_weight(3),
                      ploss_pixels({1, 3, 16, 16}, 1));
  const auto flat = torch::full({2, 3, 16, 16}, 100.0f);
  EXPECT_EQ(ploss_value(loss(flat, flat).tv), 0);
  // A ramp along W, flat along H: mean(dx^2) = 4, mean(dy^2) = 0.
  const auto ramp = (torch::arange(16, torch::kFloat32) * 2).expand({2, 3, 16, 16}).contiguous();
  EXPECT_DOUBLE_EQ(ploss_value(loss(ramp, ramp).tv), 3 * 4.0);
  EXPECT_DOUBLE_EQ(ploss_value(loss(ramp.transpose(2, 3).contiguous(), ramp).tv), 3 * 4.0);
}

TEST(PerceptualLossTest, WeightsScaleTheTermsAndTotalIsTheirSum) {
  auto network = ploss_network();
  const auto style = ploss_pixels({1, 3, 32, 32}, 1);
  const auto output = ploss_pixels({2, 3, 32, 32}, 2);
  const auto content = ploss_pixels({2, 3, 32, 32}, 3);
  PerceptualLoss unit(
      network, PerceptualLossOptions().content_weight(1).style_weight(1).tv_weight(1), style);
  PerceptualLoss weighted(
      network, PerceptualLossOptions().content_weight(2).style_weight(3).tv_weight(4), style);
  const PerceptualLossTerms u = unit(output, content), w = weighted(output, content);
  EXPECT_NEAR(ploss_value(w.content), 2 * ploss_value(u.content), 1e-5 * ploss_value(w.content));
  EXPECT_NEAR(ploss_value(w.style), 3 * ploss_value(u.style), 1e-5 * ploss_value(w.style));
  EXPECT_NEAR(ploss_value(w.tv), 4 * ploss_value(u.tv), 1e-5 * ploss_value(w.tv));
  EXPECT_NEAR(ploss_value(w.total),
              ploss_value(w.content) + ploss_value(w.style) + ploss_value(w.tv),
              1e-5 * ploss_value(w.total));
  // A zero weight is an exact zero.
  PerceptualLoss style_only(network, PerceptualLossOptions().content_weight(0), style);
  EXPECT_EQ(ploss_value(style_only(output, content).content), 0);
  // Layer names are case-insensitive, as the network's taps.
  PerceptualLoss upper(network, PerceptualLossOptions().content_layers({"ReLU2_2"}), style);
  EXPECT_EQ(upper.options().content_layers(), (std::vector<std::string>{"relu2_2"}));
  EXPECT_NEAR(ploss_value(upper(output, content).content), 1e5 * ploss_value(u.content),
              1e-5 * 1e5 * ploss_value(u.content));
}

TEST(PerceptualLossTest, RejectsLayersTheNetworkDoesNotTapAndBadShapes) {
  auto shallow =
      std::make_shared<models::VggFeatures>("vgg16", std::vector<std::string>{"relu1_2"}, 4);
  const auto style = ploss_pixels({1, 3, 16, 16}, 1);
  Error e = ploss_error([&] { PerceptualLoss(shallow, PerceptualLossOptions(), style); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_NE(std::string(e.what()).find("'relu2_2'"), std::string::npos) << e.what();

  auto network = ploss_network();
  EXPECT_EQ(ploss_error([&] {
              PerceptualLoss(network, PerceptualLossOptions(), ploss_pixels({2, 3, 16, 16}, 1));
            }).kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(ploss_error([&] {
              PerceptualLoss(network, PerceptualLossOptions().style_weight(-1), style);
            }).kind(),
            ErrorKind::kInvalidArgument);
  PerceptualLoss loss(network, PerceptualLossOptions(), style);
  EXPECT_EQ(ploss_error([&] {
              loss(ploss_pixels({2, 3, 16, 16}, 2), ploss_pixels({2, 3, 16, 24}, 3));
            }).kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(ploss_error([&] {
              loss(ploss_pixels({2, 1, 16, 16}, 2), ploss_pixels({2, 1, 16, 16}, 3));
            }).kind(),
            ErrorKind::kInvalidArgument);
}

// pytorch/examples' recipe on VGG-16 with ImageNet normalisation, and
// lengstrom's on VGG-19 with the .mat's mean pixel (as MatConvNet's importer
// records it), at torchvision's full widths: each term within 1e-4.
TEST(PerceptualLossParityTest, MatchesTheReferenceScriptsTerms) {
  std::ifstream in(kPlossFixture);
  ASSERT_TRUE(in.good()) << kPlossFixture;
  const nlohmann::json fixture = nlohmann::json::parse(in);
  for (const std::string name : {"pytorch_examples", "lengstrom"}) {
    SCOPED_TRACE(name);
    const nlohmann::json& ref = fixture.at("cases").at(name);
    const auto content_layers = ref.at("content_layers").get<std::vector<std::string>>();
    const auto style_layers = ref.at("style_layers").get<std::vector<std::string>>();
    std::vector<std::string> taps = content_layers;
    taps.insert(taps.end(), style_layers.begin(), style_layers.end());
    auto network = std::make_shared<models::VggFeatures>(ref.at("arch").get<std::string>(), taps);

    models::WeightFile weights;
    weights.path = "formula-" + name + ".safetensors";
    weights.format = "safetensors";
    weights.tensors = ploss_formula_weights(*network);
    EXPECT_EQ(weights.tensors.size(), ref.at("num_weight_tensors").get<size_t>());
    if (ref.at("normalization") == "mean_pixel") {
      // What read_weight_file gives for a MatConvNet file: [0, 1] units.
      models::ModelMetadata meta;
      meta.config.arch = ref.at("arch").get<std::string>();
      for (double m : ref.at("mean").get<std::vector<double>>()) meta.mean.push_back(m / 255);
      for (double s : ref.at("std").get<std::vector<double>>()) meta.std.push_back(s / 255);
      weights.metadata = meta;
      weights.format = "matconvnet";
    }
    network->load_weights(weights);
    const auto mean = ref.at("mean").get<std::vector<double>>();
    for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(network->mean()[c], mean[c], 1e-9);

    PerceptualLoss loss(network,
                        PerceptualLossOptions()
                            .content_layers(content_layers)
                            .style_layers(style_layers)
                            .content_weight(ref.at("content_weight").get<double>())
                            .style_weight(ref.at("style_weight").get<double>())
                            .tv_weight(ref.at("tv_weight").get<double>()),
                        ploss_image(ref.at("style_shape").get<std::vector<int64_t>>(), 2));
    const auto batch_shape = ref.at("batch_shape").get<std::vector<int64_t>>();
    const auto content = ploss_image(batch_shape, 3);
    const auto output = ploss_image(batch_shape, 4);
    torch::NoGradGuard no_grad;
    const PerceptualLossTerms terms = loss(output, content);

    const auto out_features = network->forward(output);
    for (const auto& tap : ref.at("output_tap_sums").items()) {
      const double mine = out_features.at(tap.key()).to(torch::kFloat64).sum().item<double>();
      EXPECT_LT(ploss_relative(mine, tap.value().get<double>()), 1e-5) << tap.key();
    }
    for (const char* term : {"content", "style", "tv", "total"}) {
      const at::Tensor& t = std::string(term) == "content" ? terms.content
                            : std::string(term) == "style" ? terms.style
                            : std::string(term) == "tv"    ? terms.tv
                                                           : terms.total;
      const double mine = ploss_value(t), reference = ref.at(term).get<double>();
      const double rel = ploss_relative(mine, reference);
      std::printf("[ perceptual loss parity ] %s %s: %.9g vs %.9g, relative error %.3g\n",
                  name.c_str(), term, mine, reference, rel);
      EXPECT_LT(rel, 1e-4) << term << ": " << mine << " vs " << reference;
    }
  }
}

TEST(PerceptualLossTest, CudaTermsMatchCpu_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);  // compare float32 with float32
  auto cpu_network = ploss_network(16);
  auto cuda_network = ploss_network(16);
  cuda_network->to(torch::kCUDA);
  const auto style = ploss_pixels({1, 3, 40, 36}, 1);
  const auto output = ploss_pixels({2, 3, 32, 32}, 2);
  const auto content = ploss_pixels({2, 3, 32, 32}, 3);
  const auto options = PerceptualLossOptions().tv_weight(10);
  PerceptualLoss cpu(cpu_network, options, style);
  PerceptualLoss cuda(cuda_network, options, style.cuda());
  const PerceptualLossTerms a = cpu(output, content);
  const PerceptualLossTerms b = cuda(output.cuda(), content.cuda());
  EXPECT_TRUE(b.total.is_cuda());
  EXPECT_LT(ploss_relative(ploss_value(b.content), ploss_value(a.content)), 1e-4);
  EXPECT_LT(ploss_relative(ploss_value(b.style), ploss_value(a.style)), 1e-3);
  EXPECT_LT(ploss_relative(ploss_value(b.tv), ploss_value(a.tv)), 1e-5);
  at::globalContext().setAllowTF32CuDNN(tf32);
}

}  // namespace gpulab::tasks
