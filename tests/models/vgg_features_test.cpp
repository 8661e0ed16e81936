// VggFeatures: torchvision's layer names, taps equal to the matching prefix of
// gpulab's own Vgg, frozen parameters, and weights (and their normalisation)
// from safetensors, gpulab model files and MatConvNet .mat files.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <functional>

#include "gpulab/core/error.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/models/vgg.h"
#include "gpulab/models/vgg_features.h"
#include "gpulab/models/weight_file.h"
#include "tests/support/test_util.h"
#ifdef GPULAB_WITH_MATIO
#include "tests/support/matconvnet_writer.h"
#endif

namespace gpulab::models {
namespace {

ModelConfig vggf_config(int depth, int64_t width, bool batch_norm = false) {
  ModelConfig c;
  c.arch = fmt::format("vgg{}{}", depth, batch_norm ? "_bn" : "");
  c.num_classes = 3;
  c.in_channels = 3;
  c.height = c.width = 32;
  c.options = {{"depth", depth}, {"batch_norm", batch_norm}, {"width", width}, {"hidden", 8}};
  return c;
}

std::shared_ptr<Vgg> vggf_vgg(int depth, int64_t width, bool batch_norm = false) {
  torch::manual_seed(depth);
  auto vgg = std::make_shared<Vgg>(vggf_config(depth, width, batch_norm));
  vgg->eval();
  return vgg;
}

// A torchvision-named state dict as a plain safetensors file, read back.
WeightFile vggf_safetensors(const testing::TempDir& dir, const std::string& name, const Vgg& vgg) {
  SafetensorsContent content;
  content.tensors = state_dict(vgg);
  save_safetensors(dir / name, content);
  return read_weight_file(dir / name);
}

Error vggf_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorKind::kInternal, "no error was thrown");
}

bool vggf_contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<double> vggf_scaled(std::vector<double> v, double factor) {
  for (double& x : v) x *= factor;
  return v;
}

void vggf_expect_near(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "index " << i;
}

const std::vector<double> kVggfImageNetMean = {0.485, 0.456, 0.406};
const std::vector<double> kVggfImageNetStd = {0.229, 0.224, 0.225};

}  // namespace

TEST(VggFeaturesTest, LayerNamesAreTorchvisionsFeaturesInOrder) {
  const auto vgg16 = vgg_layer_names("vgg16");
  ASSERT_EQ(vgg16.size(), 31u);
  EXPECT_EQ(vgg16.front(), "conv1_1");
  EXPECT_EQ(vgg16[1], "relu1_1");
  EXPECT_EQ(vgg16[4], "pool1");
  // pytorch/examples' Vgg16 slices end at features[3], [8], [15], [22].
  EXPECT_EQ(vgg16[3], "relu1_2");
  EXPECT_EQ(vgg16[8], "relu2_2");
  EXPECT_EQ(vgg16[15], "relu3_3");
  EXPECT_EQ(vgg16[22], "relu4_3");
  EXPECT_EQ(vgg16.back(), "pool5");

  const auto vgg19 = vgg_layer_names("VGG19");  // case-insensitive
  ASSERT_EQ(vgg19.size(), 37u);
  EXPECT_EQ(vgg19[16], "conv3_4");
  EXPECT_EQ(vgg19[22], "relu4_2");  // lengstrom's content layer
  EXPECT_EQ(vgg19[29], "relu5_1");
  EXPECT_EQ(vgg19.back(), "pool5");

  Error e = vggf_error([] { vgg_layer_names("vgg11"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "vgg16, vgg19")) << e.what();
}

TEST(VggFeaturesTest, UnknownTapIsRejectedListingTheValidNames) {
  Error e = vggf_error([] { VggFeatures("vgg16", {"relu2_2", "relu9_9"}); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "'relu9_9'")) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "conv1_1, relu1_1, conv1_2")) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "pool5")) << e.what();
  // conv3_4 is a vgg19 layer only.
  EXPECT_EQ(vggf_error([] { VggFeatures("vgg16", {"conv3_4"}); }).kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(vggf_error([] { VggFeatures("vgg16", {}); }).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(vggf_error([] { VggFeatures("resnet18", {"relu1_1"}); }).kind(),
            ErrorKind::kInvalidArgument);
}

TEST(VggFeaturesTest, BuildsOnlyUpToTheDeepestTapWithTorchvisionNamesFrozen) {
  VggFeatures f("vgg16", {"relu2_2", "relu1_1", "relu2_2"}, /*width=*/4);
  EXPECT_EQ(f.taps(), (std::vector<std::string>{"relu1_1", "relu2_2"}));
  EXPECT_EQ(f.deepest_layer(), 8);
  std::vector<std::string> names;
  for (const auto& p : f.named_parameters()) {
    names.push_back(p.key());
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"features.0.weight", "features.0.bias", "features.2.weight",
                                      "features.2.bias", "features.5.weight", "features.5.bias",
                                      "features.7.weight", "features.7.bias"}));
  EXPECT_EQ(f.named_parameters()["features.7.weight"].sizes(), (std::vector<int64_t>{8, 8, 3, 3}));
  // Before load_weights: torchvision's ImageNet normalisation in 0..255 units.
  vggf_expect_near(f.mean(), vggf_scaled(kVggfImageNetMean, 255), 1e-9);
  vggf_expect_near(f.std(), vggf_scaled(kVggfImageNetStd, 255), 1e-9);
}

TEST(VggFeaturesTest, TapsEqualThePrefixOfVggFeaturesLoadedFromSafetensors) {
  testing::TempDir dir;
  auto vgg = vggf_vgg(16, /*width=*/4);
  const WeightFile weights = vggf_safetensors(dir, "vgg16.safetensors", *vgg);
  EXPECT_EQ(weights.format, "safetensors");
  EXPECT_FALSE(weights.metadata.has_value());

  // Built at torchvision's width 64; the file's width 4 replaces it.
  VggFeatures f("vgg16", {"conv1_1", "relu2_2", "pool3", "conv4_2", "relu4_3"});
  f.load_weights(weights);
  vggf_expect_near(f.mean(), vggf_scaled(kVggfImageNetMean, 255), 1e-9);
  vggf_expect_near(f.std(), vggf_scaled(kVggfImageNetStd, 255), 1e-9);
  const auto vgg_params = vgg->named_parameters();
  for (const auto& p : f.named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), vgg_params[p.key()])) << p.key();
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }

  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  const auto x = torch::rand({2, 3, 32, 32}) * 255;
  const auto taps = f.forward(x);
  ASSERT_EQ(taps.size(), 5u);
  EXPECT_EQ(taps.at("relu4_3").sizes(), (std::vector<int64_t>{2, 32, 4, 4}));
  EXPECT_EQ(taps.at("pool3").sizes(), (std::vector<int64_t>{2, 16, 4, 4}));

  // normalize() is (x - mean) / std with torchvision's ImageNet statistics.
  const auto normalized = f.normalize(x);
  const auto mean = torch::tensor(kVggfImageNetMean).reshape({1, 3, 1, 1}) * 255;
  const auto std = torch::tensor(kVggfImageNetStd).reshape({1, 3, 1, 1}) * 255;
  EXPECT_TRUE(torch::allclose(normalized, ((x - mean) / std).to(torch::kFloat32), 1e-6, 1e-6));

  // The Vgg's own `features` Sequential on the same normalised input.
  const auto names = vgg_layer_names("vgg16");
  auto features = vgg->named_children()["features"]->as<torch::nn::Sequential>();
  ASSERT_NE(features, nullptr);
  auto h = normalized.clone();
  int64_t i = 0;
  for (auto it = features->begin(); i <= f.deepest_layer(); ++it, ++i) {
    h = it->forward(h);
    auto tap = taps.find(names[i]);
    if (tap != taps.end()) {
      // Exact: the same kernels on the same values. The Vgg's ReLUs are in
      // place, so compare before the next layer runs.
      EXPECT_TRUE(torch::equal(tap->second, h)) << names[i];
    }
  }
}

TEST(VggFeaturesTest, GradientsReachTheInputNotTheParameters) {
  VggFeatures f("vgg19", {"relu1_1", "relu3_1"}, /*width=*/2);
  const auto x = (torch::rand({1, 3, 16, 16}) * 255).requires_grad_();
  auto taps = f.forward(x);
  (taps.at("relu1_1").sum() + taps.at("relu3_1").pow(2).sum()).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0);
  for (const auto& p : f.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(VggFeaturesTest, RejectsWeightsOfAnotherVgg) {
  testing::TempDir dir;
  const WeightFile vgg19 = vggf_safetensors(dir, "vgg19.safetensors", *vggf_vgg(19, 2));
  VggFeatures f16("vgg16", {"relu2_2"});
  Error e = vggf_error([&] { f16.load_weights(vgg19); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "vgg19")) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), dir / "vgg19.safetensors")) << e.what();

  const WeightFile vgg16 = vggf_safetensors(dir, "vgg16.safetensors", *vggf_vgg(16, 2));
  VggFeatures f19("vgg19", {"relu1_1"});
  e = vggf_error([&] { f19.load_weights(vgg16); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "a vgg16")) << e.what();

  const WeightFile bn = vggf_safetensors(dir, "bn.safetensors", *vggf_vgg(16, 2, true));
  e = vggf_error([&] { f16.load_weights(bn); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "batch norm")) << e.what();

  // A gpulab model file says what it is in its metadata.
  ModelMetadata meta;
  meta.config = vggf_config(19, 2);
  meta.mean = kVggfImageNetMean;
  meta.std = kVggfImageNetStd;
  save_model_file(dir / "vgg19.gpulab.safetensors", *vggf_vgg(19, 2), meta);
  e = vggf_error([&] { f16.load_weights(read_weight_file(dir / "vgg19.gpulab.safetensors")); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "holds vgg19 weights")) << e.what();
}

TEST(VggFeaturesTest, MissingOrMisshapenFeaturesTensorIsCorruptDataNamingTheFile) {
  WeightFile weights;
  weights.path = "/data/vgg16-partial.pth";
  weights.format = "pytorch";
  weights.tensors = state_dict(*vggf_vgg(16, 2));

  WeightFile missing = weights;
  missing.tensors.erase("features.10.weight");  // conv3_1
  VggFeatures deep("vgg16", {"relu3_1"});
  Error e = vggf_error([&] { deep.load_weights(missing); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "/data/vgg16-partial.pth")) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "features.10.weight")) << e.what();
  // Below the deepest tap only: a network that stops at relu2_2 does not need it.
  VggFeatures shallow("vgg16", {"relu2_2"});
  EXPECT_NO_THROW(shallow.load_weights(missing));

  WeightFile misshapen = weights;
  misshapen.tensors["features.2.weight"] = torch::zeros({2, 5, 3, 3});
  e = vggf_error([&] { shallow.load_weights(misshapen); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "features.2.weight")) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "[2, 5, 3, 3]")) << e.what();

  WeightFile none;
  none.path = "/data/resnet.safetensors";
  none.tensors["conv1.weight"] = torch::zeros({64, 3, 7, 7});
  e = vggf_error([&] { shallow.load_weights(none); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "/data/resnet.safetensors")) << e.what();
}

TEST(VggFeaturesTest, UsesTheNormalisationAGpulabModelFileRecords) {
  testing::TempDir dir;
  auto vgg = vggf_vgg(16, 2);
  ModelMetadata meta;
  meta.config = vggf_config(16, 2);
  meta.mean = {0.5, 0.25, 0.125};
  meta.std = {0.5, 0.5, 0.25};
  save_model_file(dir / "vgg16.safetensors", *vgg, meta);
  const WeightFile weights = read_weight_file(dir / "vgg16.safetensors");
  EXPECT_EQ(weights.format, "gpulab");
  VggFeatures f("vgg16", {"relu3_3"});
  f.load_weights(weights);
  vggf_expect_near(f.mean(), {127.5, 63.75, 31.875}, 1e-9);
  vggf_expect_near(f.std(), {127.5, 127.5, 63.75}, 1e-9);
  // The buffers follow: normalize() uses them.
  const auto x = torch::full({1, 3, 2, 2}, 255.0f);
  const auto n = f.normalize(x);
  EXPECT_FLOAT_EQ(n[0][0][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(n[0][2][0][0].item<float>(), (255 - 31.875f) / 63.75f);
}

#ifdef GPULAB_WITH_MATIO
TEST(VggFeaturesTest, LoadsMatConvNetKernelsAsOihwWithTheFilesAveragePixel) {
  testing::TempDir dir;
  const testing::FakeNet net = testing::make_fake_vgg(16, /*width=*/2, /*hidden=*/8, 3);
  testing::write_matconvnet(dir / "imagenet-vgg-verydeep-16.mat", net);
  const WeightFile weights = read_weight_file(dir / "imagenet-vgg-verydeep-16.mat");
  EXPECT_EQ(weights.format, "matconvnet");

  VggFeatures f("vgg16", {"relu5_3"});
  f.load_weights(weights);
  const auto names = vgg_layer_names("vgg16");
  const auto params = f.named_parameters();
  int k = 0;
  for (size_t i = 0; i < names.size() && names[i] != "pool5"; ++i) {
    if (names[i].rfind("conv", 0) != 0) continue;
    const testing::FakeLayer& layer = net.layers[testing::conv_layer_index(net, k++)];
    // MATLAB's [H][W][Cin][Cout] as PyTorch's [Cout][Cin][H][W].
    EXPECT_TRUE(torch::equal(params[fmt::format("features.{}.weight", i)],
                             layer.weight.permute({3, 2, 0, 1})))
        << names[i];
    EXPECT_TRUE(torch::equal(params[fmt::format("features.{}.bias", i)], layer.bias.flatten()))
        << names[i];
  }
  EXPECT_EQ(k, 13);
  // The average pixel in 0..255 (stored as single precision), std 1.
  vggf_expect_near(f.mean(), {123.68, 116.779, 103.939}, 1e-4);
  vggf_expect_near(f.std(), {1, 1, 1}, 1e-12);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(f.forward(torch::rand({1, 3, 32, 32}) * 255).at("relu5_3").sizes(),
            (std::vector<int64_t>{1, 16, 2, 2}));

  VggFeatures f19("vgg19", {"relu1_1"});
  Error e = vggf_error([&] { f19.load_weights(weights); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  EXPECT_TRUE(vggf_contains(e.what(), "vgg16")) << e.what();
}
#endif

}  // namespace gpulab::models
