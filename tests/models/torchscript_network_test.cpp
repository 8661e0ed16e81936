// TorchScript archives as networks: whole, and as a frozen feature extractor
// with a new head; model files of them round-trip.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/export.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

// basic_cnn with non-default batch-norm statistics, exported to TorchScript.
LoadedModel export_basic_cnn(const std::string& path) {
  LoadedModel m;
  m.metadata = torchvision_metadata("basic_cnn", 10);
  m.metadata.config.in_channels = 1;
  m.metadata.config.height = m.metadata.config.width = 28;
  m.metadata.config.options = {{"nf", 4}};
  m.network = create_model(m.metadata.config);
  m.network->train();
  {
    torch::NoGradGuard no_grad;
    m.network->forward(torch::randn({8, 1, 28, 28}) * 2 + 1);
  }
  m.network->eval();
  export_torchscript(m, path);
  return m;
}

ModelConfig torchscript_config(const std::string& file, bool features, int64_t classes) {
  ModelConfig c;
  c.arch = "torchscript";
  c.in_channels = 1;
  c.height = c.width = 28;
  c.num_classes = classes;
  c.options = {{"file", file}, {"feature_extractor", features}};
  return c;
}

}  // namespace

TEST(TorchScriptNetworkTest, WholeModelGivesTheArchiveOutputsUnderBackboneNames) {
  testing::TempDir dir;
  LoadedModel original = export_basic_cnn(dir / "cnn.pt");
  auto net = create_model(torchscript_config(dir / "cnn.pt", false, 10));
  auto sd = state_dict(*net);
  EXPECT_EQ(sd.size(), state_dict(*original.network).size());
  EXPECT_TRUE(sd.count("backbone.layer1.conv.weight"));
  EXPECT_TRUE(sd.at("backbone.layer1.conv.weight").requires_grad());
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({3, 1, 28, 28});
  EXPECT_TRUE(torch::allclose(net->forward(x), original.network->forward(x), 1e-5, 1e-6));
  EXPECT_THROW(create_model(torchscript_config(dir / "cnn.pt", false, 7)), Error);
}

TEST(TorchScriptNetworkTest, FeatureExtractorIsFrozenAndTrainsOnlyItsHead) {
  testing::TempDir dir;
  export_basic_cnn(dir / "cnn.pt");
  auto net = create_model(torchscript_config(dir / "cnn.pt", true, 3));
  auto sd = state_dict(*net);
  EXPECT_EQ(sd.at("head.weight").sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_FALSE(sd.at("backbone.layer2.conv.weight").requires_grad());
  const auto stats = sd.at("backbone.layer1.bn.running_mean").clone();
  net->train();
  auto loss = net->forward(torch::randn({4, 1, 28, 28}) * 3).pow(2).mean();
  loss.backward();
  EXPECT_TRUE(torch::equal(stats, sd.at("backbone.layer1.bn.running_mean")));
  EXPECT_TRUE(sd.at("head.weight").grad().defined());
  EXPECT_FALSE(sd.at("backbone.layer2.conv.weight").grad().defined());
}

TEST(TorchScriptNetworkTest, ModelFileRoundTripAndPredictionFromTheArchive) {
  testing::TempDir dir;
  LoadedModel original = export_basic_cnn(dir / "cnn.pt");
  LoadedModel model;
  model.metadata = original.metadata;
  model.metadata.config = torchscript_config(dir / "cnn.pt", true, 3);
  model.network = create_model(model.metadata.config);
  save_model_file(dir / "m.safetensors", *model.network, model.metadata);
  LoadedModel back = load_model_file(dir / "m.safetensors");
  auto x = torch::randn({2, 1, 28, 28});
  torch::NoGradGuard no_grad;
  model.network->eval();
  EXPECT_TRUE(torch::equal(back.network->forward(x), model.network->forward(x)));
  // --model torchscript --weights FILE: the archive as it is, metadata from gpulab export.
  LoadedModel whole = load_pretrained("torchscript", dir / "cnn.pt");
  EXPECT_EQ(whole.metadata.config.num_classes, 10);
  EXPECT_EQ(whole.metadata.config.in_channels, 1);
  EXPECT_TRUE(torch::allclose(whole.network->forward(x), original.network->forward(x), 1e-5, 1e-6));
}

}  // namespace gpulab::models
