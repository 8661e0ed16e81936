// Reading weight files: DataParallel's "module." prefix on plain state dicts.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/models/weight_file.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

ModelConfig erfnet_config() {
  ModelConfig c;
  c.arch = "erfnet";
  c.num_classes = 20;
  c.in_channels = 3;
  c.height = c.width = 32;
  return c;
}

}  // namespace

TEST(WeightFileTest, DataParallelModulePrefixIsStripped) {
  testing::TempDir dir;
  auto net = create_model(erfnet_config());
  // torch.save(DataParallel(net).state_dict()) converted with safetensors' save_file.
  SafetensorsContent content;
  for (const auto& [name, tensor] : state_dict(*net)) content.tensors["module." + name] = tensor;
  content.metadata["format"] = "pt";
  save_safetensors(dir / "erfnet.safetensors", content);

  WeightFile w = read_weight_file(dir / "erfnet.safetensors");
  EXPECT_TRUE(w.tensors.count("encoder.initial_block.conv.weight"));
  EXPECT_FALSE(w.tensors.count("module.encoder.initial_block.conv.weight"));
  auto copy = create_model(erfnet_config());
  load_state_dict(*copy, w.tensors, w.path);
  EXPECT_TRUE(torch::equal(state_dict(*copy).at("decoder.output_conv.weight"),
                           state_dict(*net).at("decoder.output_conv.weight")));
}

TEST(WeightFileTest, ModulePrefixStaysUnlessEveryNameHasIt) {
  const auto t = torch::zeros({1});
  auto kept = strip_module_prefix({{"module.conv.weight", t}, {"fc.weight", t}});
  EXPECT_TRUE(kept.count("module.conv.weight"));
  EXPECT_TRUE(kept.count("fc.weight"));
  auto stripped = strip_module_prefix({{"module.conv.weight", t}, {"module.module.x", t}});
  EXPECT_TRUE(stripped.count("conv.weight"));
  EXPECT_TRUE(stripped.count("module.x"));  // only one level
  EXPECT_TRUE(strip_module_prefix({}).empty());
}

}  // namespace gpulab::models
