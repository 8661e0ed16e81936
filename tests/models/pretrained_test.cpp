// Imported weights: plain safetensors with torchvision's names, gpulab model
// files, bad weight files, and weights loaded for transfer learning.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

using testing::error_of;

ModelConfig config(const std::string& arch, int64_t classes, int64_t size = 224) {
  ModelConfig c;
  c.arch = arch;
  c.num_classes = classes;
  c.in_channels = 3;
  c.height = c.width = size;
  return c;
}

// A plain state dict, as `safetensors.torch.save_file(model.state_dict())` writes it.
void save_plain(const std::string& path, const Network& net) {
  SafetensorsContent content;
  content.tensors = state_dict(net);
  content.metadata["format"] = "pt";
  save_safetensors(path, content);
}

}  // namespace

TEST(PretrainedTest, PlainSafetensorsGetTorchvisionPreprocessingAndHeadClasses) {
  testing::TempDir dir;
  auto net = create_model(config("resnet18", 7));
  save_plain(dir / "r18.safetensors", *net);
  LoadedModel loaded = load_pretrained("ResNet18", dir / "r18.safetensors");
  EXPECT_EQ(loaded.metadata.config.arch, "resnet18");
  EXPECT_EQ(loaded.metadata.config.num_classes, 7);
  EXPECT_EQ(loaded.metadata.config.height, 224);
  EXPECT_EQ(loaded.metadata.std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(loaded.metadata.class_names().size(), 7u);
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 64, 64});
  EXPECT_TRUE(torch::equal(net->forward(x), loaded.network->forward(x)));
}

TEST(PretrainedTest, GpulabModelFileNamesItsOwnArchitecture) {
  testing::TempDir dir;
  ModelMetadata meta = torchvision_metadata("basic_cnn", 3);
  meta.config.in_channels = 1;
  meta.config.height = meta.config.width = 28;
  meta.mean = {0.3};
  meta.std = {0.3};
  auto net = create_model(meta.config);
  save_model_file(dir / "m.safetensors", *net, meta);
  EXPECT_EQ(load_pretrained("", dir / "m.safetensors").metadata.config.arch, "basic_cnn");
  EXPECT_NE(error_of([&] {
              load_pretrained("lenet5", dir / "m.safetensors");
            }).find("holds a basic_cnn network but `model` is lenet5"),
            std::string::npos);
}

TEST(PretrainedTest, BadWeightFilesGiveClearErrors) {
  testing::TempDir dir;
  auto net = create_model(config("resnet18", 4));
  SafetensorsContent content;
  content.tensors = state_dict(*net);
  content.tensors.erase("layer2.0.bn1.running_var");
  content.tensors["layer4.1.conv2.weight"] = torch::zeros({512, 512, 1, 1});
  content.tensors["head.extra"] = torch::zeros({1});
  save_safetensors(dir / "bad.safetensors", content);
  const std::string msg = error_of([&] { load_pretrained("resnet18", dir / "bad.safetensors"); });
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing [layer2.0.bn1.running_var]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected [head.extra]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer4.1.conv2.weight (file 512x512x1x1, model 512x512x3x3)"),
            std::string::npos)
      << msg;

  save_plain(dir / "good.safetensors", *net);
  std::string bytes = testing::read_bytes(dir / "good.safetensors");
  testing::write_bytes(dir / "truncated.safetensors", bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(error_of([&] {
              load_pretrained("resnet18", dir / "truncated.safetensors");
            }).find("truncated.safetensors"),
            std::string::npos);
  testing::write_bytes(dir / "notes.pt", "these are not weights\n");
  EXPECT_NE(error_of([&] {
              load_pretrained("resnet18", dir / "notes.pt");
            }).find("'" + (dir / "notes.pt") + "' is not a weight file gpulab reads"),
            std::string::npos);
  testing::write_bytes(dir / "empty.safetensors", "");
  EXPECT_NE(error_of([&] { read_weight_file(dir / "empty.safetensors"); }).find("is empty"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_weight_file(dir / "absent.safetensors"); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_pretrained("vgg11", dir / "good.safetensors");
            }).find("classifier.6.weight"),
            std::string::npos);
}

TEST(PretrainedTest, TransferKeepsTheBodyAndReplacesTheHead) {
  testing::TempDir dir;
  auto source = create_model(config("resnet18", 10, 32));
  save_plain(dir / "src.safetensors", *source);
  auto target = create_model(config("resnet18", 3, 32));
  const auto fresh_head = state_dict(*target).at("fc.weight").clone();
  const WeightFile weights = read_weight_file(dir / "src.safetensors");
  EXPECT_EQ(head_classes(weights, "resnet18"), 10);
  load_weights_for_transfer(*target, "resnet18", weights, /*replace_head=*/true);
  auto after = state_dict(*target);
  EXPECT_TRUE(torch::equal(after.at("layer3.1.conv2.weight"),
                           state_dict(*source).at("layer3.1.conv2.weight")));
  EXPECT_TRUE(torch::equal(after.at("fc.weight"), fresh_head));
  EXPECT_EQ(after.at("fc.weight").size(0), 3);
  // Without replacing the head, the class counts must agree.
  EXPECT_THROW(load_weights_for_transfer(*target, "resnet18", weights, false), Error);
}

// Regression: files from before PyTorch 0.4.1 (and torchvision's first
// weights) have no "*.num_batches_tracked"; PyTorch loads them strictly.
TEST(PretrainedTest, StateDictWithoutBatchCountersLoadsThemAsZero) {
  testing::TempDir dir;
  auto net = create_model(config("resnet18", 4));
  SafetensorsContent content;
  content.tensors = state_dict(*net);
  for (auto it = content.tensors.begin(); it != content.tensors.end();) {
    it = it->first.find("num_batches_tracked") != std::string::npos ? content.tensors.erase(it)
                                                                    : std::next(it);
  }
  content.tensors["fc.bias"] = torch::arange(4, torch::kFloat32);
  save_safetensors(dir / "old.safetensors", content);
  LoadedModel loaded = load_pretrained("resnet18", dir / "old.safetensors");
  auto sd = state_dict(*loaded.network);
  EXPECT_TRUE(torch::equal(sd.at("fc.bias"), torch::arange(4, torch::kFloat32)));
  EXPECT_EQ(sd.at("layer1.0.bn1.num_batches_tracked").item<int64_t>(), 0);
  // Any other missing tensor is still an error.
  content.tensors.erase("layer1.0.bn1.running_mean");
  save_safetensors(dir / "older.safetensors", content);
  const std::string msg = error_of([&] { load_pretrained("resnet18", dir / "older.safetensors"); });
  EXPECT_NE(msg.find("missing [layer1.0.bn1.running_mean]"), std::string::npos) << msg;
}

// torch.save files (zip archives) are read; a legacy one (before PyTorch
// 1.6, a bare pickle) gets the command that saves it again.
TEST(PretrainedTest, TorchSaveFilesAreReadAndLegacyOnesGetTheResaveCommand) {
  testing::TempDir dir;
  c10::Dict<std::string, torch::Tensor> sd;
  sd.insert("fc.weight", torch::ones({2, 2}));
  const std::vector<char> zip = torch::pickle_save(sd);
  testing::write_bytes(dir / "zip.pth", std::string(zip.begin(), zip.end()));
  const WeightFile w = read_weight_file(dir / "zip.pth");
  EXPECT_EQ(w.format, "pytorch");
  EXPECT_TRUE(torch::equal(w.tensors.at("fc.weight"), torch::ones({2, 2})));
  // torch.save(..., _use_new_zipfile_serialization=False): a bare pickle.
  testing::write_bytes(dir / "legacy.pth", std::string("\x80\x02\x8a\x0a", 4) + "lZ pickled");
  const std::string msg = error_of([&] { read_weight_file(dir / "legacy.pth"); });
  EXPECT_NE(msg.find(dir / "legacy.pth"), std::string::npos) << msg;
  EXPECT_NE(msg.find("torch.save()"), std::string::npos) << msg;
  EXPECT_NE(msg.find("torch.save(torch.load('" + (dir / "legacy.pth") +
                     "', map_location='cpu'), 'new.pth')"),
            std::string::npos)
      << msg;
}

TEST(PretrainedTest, ResnetStemMismatchSuggestsTheSmallInputOption) {
  testing::TempDir dir;
  save_plain(dir / "imagenet.safetensors", *create_model(config("resnet18", 10)));
  auto small = create_model(config("resnet18", 3, 32));  // 3x3 stem below 64 pixels
  const std::string msg = error_of([&] {
    load_weights_for_transfer(*small, "resnet18", read_weight_file(dir / "imagenet.safetensors"),
                              true);
  });
  EXPECT_NE(msg.find("imagenet.safetensors' has a 7x7 ResNet stem"), std::string::npos) << msg;
  EXPECT_NE(msg.find("`model_options` small_input=false"), std::string::npos) << msg;
  ModelConfig large = config("resnet18", 3, 32);
  large.options = {{"small_input", false}};
  auto fits = create_model(large);
  load_weights_for_transfer(*fits, "resnet18", read_weight_file(dir / "imagenet.safetensors"),
                            true);
}

// Regression: predict/export chose the stem from the input size, and the
// error suggested --model-option, which they do not take.
TEST(PretrainedTest, PlainResnetWeightsGetTheStemOfTheirConv1AtAnyInputSize) {
  testing::TempDir dir;
  save_plain(dir / "imagenet.safetensors", *create_model(config("resnet18", 10)));
  save_plain(dir / "small.safetensors", *create_model(config("resnet18", 10, 32)));
  LoadedModel large = load_pretrained("resnet18", dir / "imagenet.safetensors",
                                      PretrainedOptions().height(32).width(32));
  EXPECT_EQ(state_dict(*large.network).at("conv1.weight").size(3), 7);
  EXPECT_EQ(large.metadata.config.options.at("small_input"), false);
  LoadedModel small = load_pretrained("resnet18", dir / "small.safetensors");
  EXPECT_EQ(state_dict(*small.network).at("conv1.weight").size(3), 3);
  EXPECT_EQ(small.metadata.config.options.at("small_input"), true);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(large.network->forward(torch::zeros({1, 3, 32, 32})).sizes(),
            (std::vector<int64_t>{1, 10}));
  EXPECT_EQ(small.network->forward(torch::zeros({1, 3, 224, 224})).sizes(),
            (std::vector<int64_t>{1, 10}));
}

}  // namespace gpulab::models
