// DeepLab v3+ (ResNet-18, MATLAB's layout): shapes at odd sizes and both
// output strides, MATLAB's parameter count, torchvision backbone names and
// loading, save/load and that it learns.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/deeplabv3plus.h"
#include "gpulab/models/registry.h"

namespace gpulab::models {
namespace {

ModelConfig deeplab_config(int64_t classes, int64_t output_stride = 16, int64_t size = 64) {
  ModelConfig c;
  c.arch = "deeplabv3plus";
  c.num_classes = classes;
  c.in_channels = 3;
  c.height = c.width = size;
  c.options = {{"output_stride", output_stride}};
  return c;
}

std::shared_ptr<DeepLabV3Plus> build_deeplab(int64_t classes, int64_t output_stride = 16) {
  auto net = std::dynamic_pointer_cast<DeepLabV3Plus>(
      create_model(deeplab_config(classes, output_stride)));
  EXPECT_NE(net, nullptr);
  return net;
}

int64_t deeplab_parameter_count(const torch::nn::Module& net, const std::string& prefix = "") {
  int64_t n = 0;
  for (const auto& p : net.named_parameters()) {
    if (p.key().rfind(prefix, 0) == 0) n += p.value().numel();
  }
  return n;
}

std::vector<int64_t> deeplab_shape(const torch::Tensor& t) {
  return t.sizes().vec();
}

// (stride, dilation) of the conv at `path`.
std::pair<int64_t, int64_t> stride_dilation(const torch::nn::Module& net, const std::string& path) {
  auto modules = net.named_modules();
  auto* conv = modules[path]->as<torch::nn::Conv2d>();
  EXPECT_NE(conv, nullptr) << path;
  return {(*conv->options.stride())[0], (*conv->options.dilation())[0]};
}

}  // namespace

TEST(DeepLabV3PlusTest, OutputHasTheInputSizeAtAnySizeFrom16) {
  auto net = build_deeplab(11);
  net->eval();
  torch::NoGradGuard no_grad;
  for (auto hw : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {33, 47}, {64, 96}, {50, 17}}) {
    EXPECT_EQ(deeplab_shape(net->forward(torch::randn({1, 3, hw.first, hw.second}))),
              (std::vector<int64_t>{1, 11, hw.first, hw.second}))
        << hw.first << "x" << hw.second;
  }
}

TEST(DeepLabV3PlusTest, OutputStride8And16GiveTheirFeatureSizes) {
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 96});
  for (int64_t os : {16, 8}) {
    auto net = build_deeplab(5, os);
    net->eval();
    EXPECT_EQ(net->output_stride(), os);
    auto f = net->backbone()->forward(x);
    EXPECT_EQ(deeplab_shape(f.low_level), (std::vector<int64_t>{1, 64, 16, 24}));
    EXPECT_EQ(deeplab_shape(f.high_level), (std::vector<int64_t>{1, 512, 64 / os, 96 / os}));
    EXPECT_EQ(deeplab_shape(net->forward(x)), (std::vector<int64_t>{1, 5, 64, 96}));
  }
}

TEST(DeepLabV3PlusTest, DilationsArePlacedAsMatlabDoes) {
  using SD = std::pair<int64_t, int64_t>;
  auto os16 = build_deeplab(2, 16);
  // res5a: 3x3 #1 stride 1 dilation 1, #2 dilation 2, projection stride 1; res5b dilation 2.
  EXPECT_EQ(stride_dilation(*os16, "backbone.layer3.0.conv1"), SD(2, 1));
  EXPECT_EQ(stride_dilation(*os16, "backbone.layer4.0.conv1"), SD(1, 1));
  EXPECT_EQ(stride_dilation(*os16, "backbone.layer4.0.conv2"), SD(1, 2));
  EXPECT_EQ(stride_dilation(*os16, "backbone.layer4.0.downsample.0"), SD(1, 1));
  EXPECT_EQ(stride_dilation(*os16, "backbone.layer4.1.conv1"), SD(1, 2));
  EXPECT_EQ(stride_dilation(*os16, "backbone.layer4.1.conv2"), SD(1, 2));
  EXPECT_EQ(stride_dilation(*os16, "aspp.convs.1.0"), SD(1, 6));
  EXPECT_EQ(stride_dilation(*os16, "aspp.convs.2.0"), SD(1, 12));
  EXPECT_EQ(stride_dilation(*os16, "aspp.convs.3.0"), SD(1, 18));

  auto os8 = build_deeplab(2, 8);
  EXPECT_EQ(stride_dilation(*os8, "backbone.layer3.0.conv1"), SD(1, 1));
  EXPECT_EQ(stride_dilation(*os8, "backbone.layer3.0.conv2"), SD(1, 2));
  EXPECT_EQ(stride_dilation(*os8, "backbone.layer3.1.conv1"), SD(1, 2));
  EXPECT_EQ(stride_dilation(*os8, "backbone.layer4.0.conv1"), SD(1, 2));
  EXPECT_EQ(stride_dilation(*os8, "backbone.layer4.0.conv2"), SD(1, 4));
  EXPECT_EQ(stride_dilation(*os8, "backbone.layer4.1.conv2"), SD(1, 4));
  EXPECT_EQ(stride_dilation(*os8, "aspp.convs.1.0"), SD(1, 12));
  EXPECT_EQ(stride_dilation(*os8, "aspp.convs.3.0"), SD(1, 36));
}

TEST(DeepLabV3PlusTest, ParameterCountIsMatlabsWithoutTheFrozenUpsamplers) {
  auto net = build_deeplab(11);
  // references.md B2, no biases anywhere (MATLAB's stay zero).
  EXPECT_EQ(deeplab_parameter_count(*net), 16408480);
  EXPECT_EQ(deeplab_parameter_count(*net, "backbone."), 11176512);
  EXPECT_EQ(deeplab_parameter_count(*net, "aspp.convs."), 3672064);
  EXPECT_EQ(deeplab_parameter_count(*net, "aspp.project."), 262656);
  EXPECT_EQ(deeplab_parameter_count(*net, "low_level."), 3168);
  EXPECT_EQ(
      deeplab_parameter_count(*net, "decoder.0.") + deeplab_parameter_count(*net, "decoder.1."),
      700928);
  EXPECT_EQ(
      deeplab_parameter_count(*net, "decoder.3.") + deeplab_parameter_count(*net, "decoder.4."),
      590336);
  EXPECT_EQ(deeplab_parameter_count(*net, "scorer."), 2816);
  EXPECT_EQ(deeplab_parameter_count(*build_deeplab(11, 8)), 16408480);  // dilation adds no weights
}

TEST(DeepLabV3PlusTest, BackboneHasTorchvisionResnet18NamesWithoutFc) {
  auto net = build_deeplab(11);
  auto backbone = state_dict(*net->backbone());
  EXPECT_EQ(backbone.size(), 120u);  // torchvision resnet18: 122 keys, fc.weight and fc.bias
  auto sd = state_dict(*net);
  for (const char* name :
       {"backbone.conv1.weight", "backbone.bn1.running_mean", "backbone.layer1.0.conv1.weight",
        "backbone.layer2.0.downsample.0.weight", "backbone.layer3.0.downsample.1.running_var",
        "backbone.layer4.0.downsample.0.weight", "backbone.layer4.1.bn2.num_batches_tracked",
        "aspp.convs.0.0.weight", "aspp.convs.3.1.running_var", "aspp.project.0.weight",
        "low_level.0.weight", "decoder.0.weight", "decoder.4.bias", "scorer.weight"}) {
    EXPECT_TRUE(sd.count(name)) << name;
  }
  EXPECT_FALSE(sd.count("scorer.bias"));
  for (const auto& kv : sd) EXPECT_NE(kv.first.rfind("backbone.fc", 0), 0u) << kv.first;
  EXPECT_EQ(deeplab_shape(sd.at("decoder.0.weight")), (std::vector<int64_t>{256, 304, 3, 3}));
  EXPECT_EQ(deeplab_shape(sd.at("scorer.weight")), (std::vector<int64_t>{11, 256, 1, 1}));
}

TEST(DeepLabV3PlusTest, LoadsAResnet18StateDictIntoTheBackbone) {
  torch::manual_seed(3);
  ModelConfig r;
  r.arch = "resnet18";
  r.num_classes = 1000;
  r.in_channels = 3;
  r.height = r.width = 224;
  r.options = {{"small_input", false}};
  auto resnet = create_model(r);
  {
    torch::NoGradGuard no_grad;
    resnet->forward(torch::randn({2, 3, 64, 64}));  // non-trivial running stats
  }
  const auto torchvision_state = state_dict(*resnet);
  auto net = build_deeplab(11);
  load_resnet18_backbone(*net, torchvision_state, "resnet18.safetensors");
  for (const auto& [name, tensor] : state_dict(*net->backbone())) {
    EXPECT_TRUE(torch::equal(tensor, torchvision_state.at(name))) << name;
  }

  auto incomplete = torchvision_state;
  incomplete.erase("layer4.1.bn2.weight");
  try {
    load_resnet18_backbone(*net, incomplete, "resnet18.safetensors");
    FAIL() << "a state dict without layer4.1.bn2.weight was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet18.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing [layer4.1.bn2.weight]"), std::string::npos) << msg;
  }
}

TEST(DeepLabV3PlusTest, SavedAndLoadedWeightsGiveIdenticalOutputs) {
  torch::manual_seed(2);
  auto net = build_deeplab(4);
  {
    torch::NoGradGuard no_grad;
    net->forward(torch::randn({2, 3, 32, 32}));  // training mode: moves the running stats
  }
  auto copy = build_deeplab(4);
  load_state_dict(*copy, state_dict(*net), "deeplabv3plus state dict");
  net->eval();
  copy->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 35, 29});
  EXPECT_TRUE(torch::equal(net->forward(x), copy->forward(x)));
}

TEST(DeepLabV3PlusTest, BadOutputStrideAndSmallInputsAreRejected) {
  EXPECT_THROW(build_deeplab(2, 32), Error);
  try {
    create_model(deeplab_config(2, 16, 8));
    FAIL() << "an 8x8 configuration was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("at least 16 pixels; got 8x8"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(create_model(deeplab_config(2, 16, 0)));  // size not known yet
  auto net = build_deeplab(2);
  net->eval();
  torch::NoGradGuard no_grad;
  EXPECT_THROW(net->forward(torch::randn({1, 3, 15, 32})), Error);
}

TEST(DeepLabV3PlusTest, SgdStepsReducePixelCrossEntropy) {
  torch::manual_seed(0);
  auto net = build_deeplab(3);
  // 8x8 blocks of one class each, coloured by it (+ noise): learnable at the
  // decoder's stride of 4.
  auto blocks = torch::randint(3, {2, 4, 4}, torch::kLong);
  auto target = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2);
  auto x = torch::one_hot(target, 3).permute({0, 3, 1, 2}).to(torch::kFloat) +
           0.1 * torch::randn({2, 3, 32, 32});
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  std::vector<double> losses;
  for (int step = 0; step < 5; ++step) {
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), target);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    losses.push_back(loss.item<double>());
  }
  EXPECT_LT(losses.back(), 0.8 * losses.front())
      << "losses " << losses.front() << " ... " << losses.back();
}

// MATLAB upsamples with a transposed conv (8x8, stride 4, cropping 2) whose
// frozen kernel is FCN's bilinear one; deeplabv3plus.h uses bilinear
// interpolation instead. Equal except the 2 outer rows and columns, where the
// transposed conv sees zero padding and interpolation repeats the edge.
TEST(DeepLabV3PlusTest, BilinearUpsampleEqualsMatlabsTransposedConvAwayFromTheBorder) {
  auto taps = 1 - (torch::arange(8, torch::kFloat) - 3.5).abs() / 4;
  auto kernel = torch::outer(taps, taps).view({1, 1, 8, 8});
  auto x = torch::randn({1, 1, 5, 7});
  auto matlab = torch::conv_transpose2d(x, kernel, {}, /*stride=*/4, /*padding=*/2);
  auto ours = torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{20, 28})
                                                        .mode(torch::kBilinear)
                                                        .align_corners(false));
  ASSERT_EQ(deeplab_shape(matlab), deeplab_shape(ours));
  auto inner = [](const torch::Tensor& t) { return t.slice(2, 2, 18).slice(3, 2, 26); };
  EXPECT_TRUE(torch::allclose(inner(matlab), inner(ours), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(matlab.slice(2, 0, 1), ours.slice(2, 0, 1), 1e-3, 1e-3));
}

TEST(DeepLabV3PlusTest, RegisteredUnderItsNameWithTheScorerHead) {
  EXPECT_EQ(resolve_model_name("DeepLabV3Plus"), "deeplabv3plus");
  EXPECT_EQ(head_name("deeplabv3plus"), "scorer");
}

}  // namespace gpulab::models
