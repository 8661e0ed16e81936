// Parity with torchvision: every family, with the same fixed weights, gives
// torchvision's outputs (checked-in fixture from fixtures/torchvision_parity.py)
// and loads the safetensors files that script writes with torchvision's names.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "tests/support/formula_weights.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

const std::string kFixtureDir = std::string(GPULAB_SOURCE_DIR) + "/tests/models/fixtures";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

torch::Tensor fixed_input(const nlohmann::json& fixture) {
  auto shape = fixture.at("input_shape").get<std::vector<int64_t>>();
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return testing::formula_hash_values(n, 1).to(torch::kFloat32).reshape(shape);
}

torch::Tensor reference_outputs(const nlohmann::json& model) {
  auto rows = model.at("outputs").get<std::vector<std::vector<float>>>();
  std::vector<torch::Tensor> t;
  for (const auto& r : rows) t.push_back(torch::tensor(r));
  return torch::stack(t);
}

// Largest deviation relative to the output scale.
double relative_error(const torch::Tensor& out, const torch::Tensor& ref) {
  const double scale = std::max(1.0, ref.abs().max().item<double>());
  return (out - ref).abs().max().item<double>() / scale;
}

class TorchvisionParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchvisionParityTest, MatchesTorchvisionOutputsForFixedWeights) {
  const nlohmann::json fixture = read_json(kFixtureDir + "/torchvision_parity.json");
  const nlohmann::json& ref = fixture.at("models").at(GetParam());
  ModelConfig c;
  c.arch = GetParam();
  c.in_channels = 3;
  c.height = c.width = fixture.at("input_shape")[2].get<int64_t>();
  c.num_classes = fixture.at("num_classes").get<int64_t>();
  c.options = ref.at("options");
  auto net = create_model(c);
  EXPECT_EQ(state_dict(*net).size(), ref.at("num_tensors").get<size_t>());
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  EXPECT_EQ(params, ref.at("num_parameters").get<int64_t>());
  const double weight_sum = testing::fill_formula_weights(*net);
  EXPECT_NEAR(weight_sum, ref.at("weight_sum").get<double>(),
              1e-6 * std::max(1.0, std::abs(weight_sum)));
  net->eval();
  torch::NoGradGuard no_grad;
  auto out = net->forward(fixed_input(fixture));
  EXPECT_LT(relative_error(out, reference_outputs(ref)), 1e-4) << out;
}

INSTANTIATE_TEST_SUITE_P(Families, TorchvisionParityTest,
                         ::testing::Values("alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn",
                                           "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet18",
                                           "resnet34", "resnet50"));

bool has_torchvision() {
  return std::system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") == 0;
}

// Runs the reference script itself when Debian's python3-torchvision is
// installed: torchvision writes the weights, gpulab imports the file. Files
// at torchvision's widths load through load_pretrained as a user's would; the
// narrowed AlexNet and VGG ones (the fixture's "hidden" option, which the
// importer does not infer) through the same reader into a network built with
// that option.
TEST(TorchvisionImportTest, LoadsSafetensorsWrittenFromTorchvision) {
  if (!has_torchvision()) GTEST_SKIP() << "python3-torchvision is not installed";
  testing::TempDir dir;
  const std::vector<std::string> archs = {"resnet18", "resnet34", "resnet50",
                                          "alexnet",  "vgg11",    "vgg11_bn"};
  const std::string cmd = "/usr/bin/python3 " + kFixtureDir + "/torchvision_parity.py --models " +
                          fmt::format("{}", fmt::join(archs, ",")) + " --safetensors-dir " +
                          dir.path();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const nlohmann::json fixture = read_json(kFixtureDir + "/torchvision_parity.json");
  for (const std::string& arch : archs) {
    const std::string file = dir / (arch + ".safetensors");
    const nlohmann::json reference = read_json(dir / (arch + ".json"));
    std::shared_ptr<Network> network;
    if (reference.at("options").empty()) {
      LoadedModel model = load_pretrained(arch, file);
      EXPECT_EQ(model.metadata.config.num_classes, 10) << arch;
      EXPECT_EQ(model.metadata.mean, (std::vector<double>{0.485, 0.456, 0.406}));
      network = model.network;
    } else {
      ModelConfig c;
      c.arch = arch;
      c.in_channels = 3;
      c.height = c.width = 64;
      c.num_classes = 10;
      c.options = reference.at("options");
      network = create_model(c);
      load_state_dict(*network, read_weight_file(file).tensors, file);
      network->eval();
    }
    torch::NoGradGuard no_grad;
    auto out = network->forward(fixed_input(fixture));
    EXPECT_LT(relative_error(out, reference_outputs(reference)), 1e-4) << arch;
  }
}

}  // namespace
}  // namespace gpulab::models
