// Model families: shapes, parameter counts, names, the registry.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/registry.h"

namespace gpulab::models {
namespace {

ModelConfig config(const std::string& arch, int64_t channels, int64_t size, int64_t classes) {
  ModelConfig c;
  c.arch = arch;
  c.in_channels = channels;
  c.height = c.width = size;
  c.num_classes = classes;
  return c;
}

int64_t parameter_count(const Network& net) {
  int64_t n = 0;
  for (const auto& p : net.parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST(RegistryTest, BasicCnnHasTheSlidesLayersAndParameterCount) {
  auto net = create_model(config("basic_cnn", 1, 28, 10));
  // conv 72 + bn 16, conv 1152 + bn 32, conv 3456 + bn 48, fc 1176*10 + 10.
  EXPECT_EQ(parameter_count(*net), 16546);
  auto names = state_dict(*net);
  EXPECT_TRUE(names.count("layer1.conv.weight"));
  EXPECT_TRUE(names.count("layer3.bn.running_var"));
  EXPECT_TRUE(names.count("fc.bias"));
  EXPECT_EQ(net->forward(torch::randn({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(RegistryTest, BasicCnnFiltersFollowNf) {
  ModelConfig c = config("basic_cnn", 3, 32, 5);
  c.options = {{"nf", 4}};
  auto sd = state_dict(*create_model(c));
  EXPECT_EQ(sd.at("layer3.conv.weight").sizes(), (std::vector<int64_t>{12, 8, 3, 3}));
  EXPECT_EQ(sd.at("fc.weight").sizes(), (std::vector<int64_t>{5, 8 * 8 * 12}));
}

TEST(RegistryTest, LeNet5HasTheClassicParameterCount) {
  auto net = create_model(config("lenet5", 1, 28, 10));
  EXPECT_EQ(parameter_count(*net), 61706);
  EXPECT_TRUE(net->named_buffers().is_empty());  // no batch-norm
  EXPECT_EQ(net->forward(torch::randn({3, 1, 28, 28})).sizes(), (std::vector<int64_t>{3, 10}));
}

TEST(RegistryTest, ResNet18MatchesTorchvisionNamesAndSize) {
  auto net = create_model(config("resnet18", 3, 224, 1000));
  EXPECT_EQ(parameter_count(*net), 11689512);  // torchvision.models.resnet18()
  auto sd = state_dict(*net);
  EXPECT_EQ(sd.size(), 122u);  // len(torchvision resnet18 state_dict())
  for (const char* name :
       {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_var", "layer4.1.bn2.num_batches_tracked", "fc.bias"}) {
    EXPECT_TRUE(sd.count(name)) << name;
  }
  EXPECT_EQ(sd.at("conv1.weight").sizes(), (std::vector<int64_t>{64, 3, 7, 7}));
}

TEST(RegistryTest, ResNet18SmallInputStemKeepsResolution) {
  auto net = create_model(config("resnet18", 1, 28, 10));
  EXPECT_EQ(state_dict(*net).at("conv1.weight").sizes(), (std::vector<int64_t>{64, 1, 3, 3}));
  net->eval();
  EXPECT_EQ(net->forward(torch::randn({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(RegistryTest, UnknownNameListsTheValidOnes) {
  try {
    create_model(config("alexnet9000", 1, 28, 10));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("alexnet9000"), std::string::npos);
    EXPECT_NE(msg.find("alexnet, basic_cnn, deeplabv3plus, erfnet, lenet5, resnet101"),
              std::string::npos)
        << msg;
  }
}

TEST(RegistryTest, NamesAreCaseInsensitive) {
  EXPECT_NO_THROW(create_model(config("LeNet5", 1, 28, 10)));
}

}  // namespace gpulab::models
