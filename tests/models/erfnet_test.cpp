// ERFNet: shapes, the reference's parameter counts and state-dict names, the
// multiple-of-8 check, save/load, that it learns, and the reference's outputs
// for fixed weights (fixtures/erfnet_parity.py), also from its .pth file.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/models/erfnet.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/weight_file.h"
#include "tests/support/formula_weights.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

ModelConfig erfnet_config(int64_t classes, int64_t height = 32, int64_t width = 32,
                          int64_t channels = 3) {
  ModelConfig c;
  c.arch = "erfnet";
  c.num_classes = classes;
  c.in_channels = channels;
  c.height = height;
  c.width = width;
  return c;
}

int64_t erfnet_parameter_count(const torch::nn::Module& net, const std::string& prefix = "") {
  int64_t n = 0;
  for (const auto& p : net.named_parameters()) {
    if (p.key().rfind(prefix, 0) == 0) n += p.value().numel();
  }
  return n;
}

std::vector<int64_t> erfnet_shape(const torch::Tensor& t) {
  return t.sizes().vec();
}

}  // namespace

TEST(ErfNetTest, OutputHasTheInputResolutionAndOneChannelPerClass) {
  auto net = create_model(erfnet_config(20, 32, 64));
  net->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(erfnet_shape(net->forward(torch::randn({2, 3, 32, 64}))),
            (std::vector<int64_t>{2, 20, 32, 64}));
}

TEST(ErfNetTest, EncoderOnlyGivesEighthResolutionLogits) {
  ModelConfig c = erfnet_config(19, 64, 32);
  c.options = {{"encoder_only", true}};
  auto net = create_model(c);
  net->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(erfnet_shape(net->forward(torch::randn({1, 3, 64, 32}))),
            (std::vector<int64_t>{1, 19, 8, 4}));
}

TEST(ErfNetTest, ParameterCountsMatchTheReference) {
  // references.md A2: encoder body 1,874,044 for any class count.
  struct Row {
    int64_t classes, encoder_head, decoder, total;
  };
  for (const Row& r : {Row{20, 2580, 190212, 2066836}, Row{19, 2451, 190147, 2066642},
                       Row{11, 1419, 189627, 2065090}}) {
    auto net = create_model(erfnet_config(r.classes));
    EXPECT_EQ(erfnet_parameter_count(*net), r.total) << r.classes << " classes";
    EXPECT_EQ(erfnet_parameter_count(*net, "encoder.output_conv."), r.encoder_head);
    EXPECT_EQ(erfnet_parameter_count(*net, "decoder."), r.decoder);
    EXPECT_EQ(erfnet_parameter_count(*net, "encoder.") - r.encoder_head, 1874044);
  }
}

TEST(ErfNetTest, StateDictHasTheReferenceNames) {
  auto sd = state_dict(*create_model(erfnet_config(20)));
  // Eromera/erfnet_pytorch Net(20).state_dict(): 257 encoder + 88 decoder keys.
  EXPECT_EQ(sd.size(), 345u);
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"encoder.initial_block.conv.weight", {13, 3, 3, 3}},
      {"encoder.initial_block.conv.bias", {13}},
      {"encoder.initial_block.bn.running_var", {16}},
      {"encoder.layers.0.conv.weight", {48, 16, 3, 3}},
      {"encoder.layers.1.conv3x1_1.weight", {64, 64, 3, 1}},
      {"encoder.layers.1.conv1x3_1.bias", {64}},
      {"encoder.layers.5.bn1.weight", {64}},
      {"encoder.layers.6.conv.weight", {64, 64, 3, 3}},
      {"encoder.layers.6.bn.num_batches_tracked", {}},
      {"encoder.layers.7.conv3x1_2.weight", {128, 128, 3, 1}},
      {"encoder.layers.14.conv1x3_2.weight", {128, 128, 1, 3}},
      {"encoder.layers.14.bn2.running_mean", {128}},
      {"encoder.output_conv.weight", {20, 128, 1, 1}},
      {"encoder.output_conv.bias", {20}},
      {"decoder.layers.0.conv.weight", {128, 64, 3, 3}},  // ConvTranspose2d: [in, out, kH, kW]
      {"decoder.layers.0.bn.bias", {64}},
      {"decoder.layers.2.conv3x1_2.bias", {64}},
      {"decoder.layers.3.conv.weight", {64, 16, 3, 3}},
      {"decoder.layers.5.bn2.running_var", {16}},
      {"decoder.output_conv.weight", {16, 20, 2, 2}},
      {"decoder.output_conv.bias", {20}},
  };
  for (const auto& [name, sizes] : expected) {
    ASSERT_TRUE(sd.count(name)) << name;
    EXPECT_EQ(erfnet_shape(sd.at(name)), sizes) << name;
  }
  EXPECT_FALSE(sd.count("encoder.layers.15.conv3x1_1.weight"));
  EXPECT_FALSE(sd.count("decoder.layers.6.conv3x1_1.weight"));
}

TEST(ErfNetTest, BatchNormUsesTheReferenceEpsilonAndDropoutRates) {
  auto net = create_model(erfnet_config(20));
  int batch_norms = 0;
  std::vector<double> dropouts;
  for (const auto& m : net->named_modules()) {
    if (auto* bn = m.value()->as<SyncBatchNorm2d>()) {
      EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-3) << m.key();
      ++batch_norms;
    }
    if (auto* d = m.value()->as<torch::nn::Dropout2d>()) dropouts.push_back(d->options.p());
  }
  EXPECT_EQ(batch_norms, 3 + 13 * 2 + 2 + 4 * 2);  // downsamplers, encoder nb1d, up, decoder nb1d
  ASSERT_EQ(dropouts.size(), 17u);
  for (size_t i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(dropouts[i], 0.03);
  for (size_t i = 5; i < 13; ++i) EXPECT_DOUBLE_EQ(dropouts[i], 0.3);
  for (size_t i = 13; i < 17; ++i) EXPECT_DOUBLE_EQ(dropouts[i], 0.0);
}

TEST(ErfNetTest, InputNotAMultipleOf8IsRejectedWithASize) {
  auto net = create_model(erfnet_config(20));
  net->eval();
  torch::NoGradGuard no_grad;
  try {
    net->forward(torch::randn({1, 3, 100, 60}));
    FAIL() << "a 100x60 input was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("multiples of 8; got 100x60: resize or crop to e.g. "
                                         "96x56"),
              std::string::npos)
        << e.what();
  }
  try {
    create_model(erfnet_config(20, 28, 28));
    FAIL() << "a 28x28 configuration was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("got 28x28"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(create_model(erfnet_config(20, 0, 0)));  // size not known yet
}

TEST(ErfNetTest, InputChannelsFollowTheConfig) {
  auto net = create_model(erfnet_config(5, 16, 16, 1));
  EXPECT_EQ(erfnet_shape(state_dict(*net).at("encoder.initial_block.conv.weight")),
            (std::vector<int64_t>{15, 1, 3, 3}));
  net->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(erfnet_shape(net->forward(torch::randn({1, 1, 16, 16}))),
            (std::vector<int64_t>{1, 5, 16, 16}));
  EXPECT_THROW(create_model(erfnet_config(5, 16, 16, 16)), Error);
}

TEST(ErfNetTest, SavedAndLoadedWeightsGiveIdenticalOutputs) {
  torch::manual_seed(1);
  auto net = create_model(erfnet_config(4));
  {
    torch::NoGradGuard no_grad;
    net->forward(torch::randn({2, 3, 32, 32}));  // training mode: moves the running stats
  }
  auto copy = create_model(erfnet_config(4));
  load_state_dict(*copy, state_dict(*net), "erfnet state dict");
  net->eval();
  copy->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::equal(net->forward(x), copy->forward(x)));
}

TEST(ErfNetTest, SgdStepsReducePixelCrossEntropy) {
  torch::manual_seed(0);
  auto net = create_model(erfnet_config(3));
  auto x = torch::rand({2, 3, 32, 32});
  // Labels the image determines: the brightest channel of each pixel.
  auto target = x.argmax(1);
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  std::vector<double> losses;
  for (int step = 0; step < 10; ++step) {
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), target);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    losses.push_back(loss.item<double>());
  }
  EXPECT_LT(losses.back(), 0.8 * losses.front())
      << "first " << losses.front() << ", last " << losses.back();
}

TEST(ErfNetTest, RegisteredUnderItsNameWithTheDecoderHead) {
  EXPECT_EQ(resolve_model_name("ERFNet"), "erfnet");
  EXPECT_EQ(head_name("erfnet"), "decoder.output_conv");
  EXPECT_NE(dynamic_cast<ErfNet*>(create_model(erfnet_config(2)).get()), nullptr);
}

}  // namespace gpulab::models

namespace gpulab::models {

// On the CPU the stride-2 transposed convs run as a conv + pixel_shuffle
// (faster than LibTorch 1.13's slow_conv_transpose2d); outputs and gradients
// must be the transposed conv's. A fresh batch norm in eval mode divides by
// sqrt(1 + eps).
TEST(ErfNetTest, CpuUpsamplingEqualsTheTransposedConvolution) {
  torch::manual_seed(4);
  UpsamplerBlock block(8, 4);
  block->to(torch::kFloat64);
  block->eval();
  auto* conv = block->named_children()["conv"]->as<torch::nn::ConvTranspose2dImpl>();
  ASSERT_NE(conv, nullptr);
  const torch::Tensor x = torch::randn({2, 8, 5, 7}, torch::kFloat64);
  const double scale = 1.0 / std::sqrt(1.0 + 1e-3);
  const torch::Tensor fast = block->forward(x);
  const torch::Tensor reference = (conv->forward(x) * scale).relu();
  ASSERT_EQ(fast.sizes(), reference.sizes());
  EXPECT_TRUE(torch::allclose(fast, reference, 1e-12, 1e-12));
  fast.sum().backward();
  const torch::Tensor grad_fast = conv->weight.grad().clone();
  conv->weight.grad().zero_();
  (conv->forward(x) * scale).relu().sum().backward();
  EXPECT_TRUE(torch::allclose(grad_fast, conv->weight.grad(), 1e-10, 1e-10));
}

}  // namespace gpulab::models

// Parity with Eromera/erfnet_pytorch: the fixed weights of
// fixtures/erfnet_parity.py (torchvision_parity.py's formula) give the
// reference's outputs, recorded as digests in the checked-in
// erfnet_parity.json; and the .pth file the script writes as the reference
// saves its checkpoints (DataParallel's "module." names, torch.save's zip
// format) loads through read_weight_file and gives them too.
namespace gpulab::models {
namespace {

const std::string kErfNetFixtureDir = std::string(GPULAB_SOURCE_DIR) + "/tests/models/fixtures";

nlohmann::json read_erfnet_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

std::vector<int64_t> erfnet_input_shape(const nlohmann::json& fixture) {
  return fixture.at("input_shape").get<std::vector<int64_t>>();
}

torch::Tensor erfnet_fixed_input(const nlohmann::json& fixture) {
  const auto shape = erfnet_input_shape(fixture);
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return testing::formula_hash_values(n, 1).to(torch::kFloat32).reshape(shape);
}

ModelConfig erfnet_parity_config(const nlohmann::json& fixture, bool encoder_only) {
  const auto shape = erfnet_input_shape(fixture);
  ModelConfig c = erfnet_config(fixture.at("num_classes").get<int64_t>(), shape[2], shape[3]);
  if (encoder_only) c.options = {{"encoder_only", true}};
  return c;
}

const char* erfnet_output_name(bool encoder_only) {
  return encoder_only ? "encoder_only" : "full";
}

bool erfnet_has_python_torch() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

}  // namespace

TEST(ErfNetParityTest, MatchesTheReferenceOutputsForFixedWeights) {
  const nlohmann::json fixture = read_erfnet_json(kErfNetFixtureDir + "/erfnet_parity.json");
  for (const bool encoder_only : {false, true}) {
    auto net = create_model(erfnet_parity_config(fixture, encoder_only));
    EXPECT_EQ(state_dict(*net).size(), fixture.at("num_tensors").get<size_t>());
    EXPECT_EQ(erfnet_parameter_count(*net), fixture.at("num_parameters").get<int64_t>());
    const double weight_sum = testing::fill_formula_weights(*net);
    EXPECT_NEAR(weight_sum, fixture.at("weight_sum").get<double>(),
                1e-6 * std::max(1.0, std::abs(weight_sum)));
    net->eval();
    torch::NoGradGuard no_grad;
    testing::expect_matches_digest(net->forward(erfnet_fixed_input(fixture)),
                                   fixture.at("outputs").at(erfnet_output_name(encoder_only)),
                                   "class", erfnet_output_name(encoder_only));
  }
}

// Runs the reference script when Debian's python3-torch is installed: PyTorch
// writes the weights as the reference saves them, gpulab reads the file.
TEST(ErfNetParityTest, LoadsTheReferencesPthFileWithItsModulePrefix) {
  if (!erfnet_has_python_torch()) GTEST_SKIP() << "python3-torch is not installed";
  testing::TempDir dir;
  const std::string cmd =
      "/usr/bin/python3 " + kErfNetFixtureDir + "/erfnet_parity.py --pth-dir " + dir.path();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string pth = dir / "erfnet.pth";
  const std::string bytes = testing::read_bytes(pth);
  ASSERT_EQ(bytes.compare(0, 4, "PK\x03\x04"), 0) << "not torch.save's zip format";
  EXPECT_NE(bytes.find("module.encoder.initial_block.conv.weight"), std::string::npos);

  const WeightFile w = read_weight_file(pth);
  EXPECT_EQ(w.format, "pytorch");
  EXPECT_FALSE(w.metadata.has_value());
  const nlohmann::json reference = read_erfnet_json(dir / "erfnet.json");
  EXPECT_EQ(w.tensors.size(), reference.at("num_tensors").get<size_t>());
  EXPECT_EQ(w.tensors.count("module.encoder.initial_block.conv.weight"), 0u);
  // The file holds the formula's weights, name for name.
  auto formula = create_model(erfnet_parity_config(reference, false));
  testing::fill_formula_weights(*formula);
  for (const auto& [name, tensor] : state_dict(*formula)) {
    ASSERT_TRUE(w.tensors.count(name)) << name;
    EXPECT_TRUE(torch::equal(w.tensors.at(name), tensor)) << name;
  }
  torch::NoGradGuard no_grad;
  for (const bool encoder_only : {false, true}) {
    auto net = create_model(erfnet_parity_config(reference, encoder_only));
    load_state_dict(*net, w.tensors, w.path);
    net->eval();
    testing::expect_matches_digest(net->forward(erfnet_fixed_input(reference)),
                                   reference.at("outputs").at(erfnet_output_name(encoder_only)),
                                   "class",
                                   std::string("loaded, ") + erfnet_output_name(encoder_only));
  }
  // As `--weights erfnet.pth` loads it (predict, export): the class count
  // from its head, the file's tensors.
  LoadedModel loaded = load_pretrained("erfnet", pth);
  EXPECT_EQ(loaded.metadata.config.num_classes, reference.at("num_classes").get<int64_t>());
  // The reference feeds [0, 1] pixels (ToTensor), without ImageNet's statistics.
  EXPECT_EQ(loaded.metadata.mean, (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_EQ(loaded.metadata.std, (std::vector<double>{1.0, 1.0, 1.0}));
  testing::expect_matches_digest(loaded.network->forward(erfnet_fixed_input(reference)),
                                 reference.at("outputs").at("full"), "class", "load_pretrained");
}

}  // namespace gpulab::models
