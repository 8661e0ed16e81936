// TorchScript archives as networks: whole, and as a frozen feature extractor
// with a new head; model files of them round-trip.
#include <gtest/gtest.h>

#include <torch/script.h>
#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/export.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "tests/support/scripted_module.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

using testing::error_of;

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

// Regression: an archive without gpulab.json (any torch.jit.save from Python)
// lost its file path and failed with "model 'torchscript' needs the archive".
TEST(TorchScriptNetworkTest, ArchiveWithoutGpulabJsonLoadsWithTorchvisionPreprocessing) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "py.pt", 3, 5);
  LoadedModel loaded = load_pretrained("torchscript", dir / "py.pt");
  const ModelConfig& c = loaded.metadata.config;
  EXPECT_EQ(c.arch, "torchscript");
  EXPECT_EQ(c.num_classes, 5);
  EXPECT_EQ((std::vector<int64_t>{c.in_channels, c.height, c.width}),
            (std::vector<int64_t>{3, 224, 224}));
  EXPECT_EQ(loaded.metadata.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(c.options.value("file", std::string()), dir / "py.pt");
  torch::jit::Module script = torch::jit::load(dir / "py.pt");
  script.eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::allclose(loaded.network->forward(x), script.forward({x}).toTensor()));
}

TEST(TorchScriptNetworkTest, ArchiveRejectingTheDefaultInputNamesTheFileAndTakesAGivenSize) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "grey.pt", 1, 4);
  const std::string msg = error_of([&] { load_pretrained("torchscript", dir / "grey.pt"); });
  EXPECT_NE(msg.find("TorchScript file '" + (dir / "grey.pt") +
                     "' does not take a [1, 3, 224, 224] image batch"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("`channels` C, `image_size` HxW"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("Traceback"), std::string::npos) << msg;

  LoadedModel loaded = load_pretrained("torchscript", dir / "grey.pt",
                                       PretrainedOptions().channels(1).height(28).width(28));
  EXPECT_EQ(loaded.metadata.config.num_classes, 4);
  EXPECT_EQ(loaded.metadata.config.height, 28);
  EXPECT_EQ(loaded.metadata.mean, (std::vector<double>{0.0}));
  EXPECT_EQ(loaded.metadata.std, (std::vector<double>{1.0}));
  // A file that records its input keeps it.
  export_basic_cnn(dir / "cnn.pt");
  EXPECT_NE(error_of([&] {
              load_pretrained("torchscript", dir / "cnn.pt", PretrainedOptions().channels(3));
            }).find("records its input as 1x28x28"),
            std::string::npos);
}

}  // namespace gpulab::models
