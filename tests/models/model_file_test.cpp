// gpulab model files: weights plus metadata.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/test_util.h"

namespace gpulab::models {

TEST(ModelFileTest, SaveThenLoadGivesIdenticalOutputs) {
  testing::TempDir dir;
  ModelMetadata meta;
  meta.config.arch = "basic_cnn";
  meta.config.options = {{"nf", 4}};
  meta.labels = labels_json({}, 10);
  meta.mean = {0.28};
  meta.std = {0.35};
  auto net = create_model(meta.config);
  // Non-default batch-norm statistics must survive too.
  net->train();
  net->forward(torch::randn({8, 1, 28, 28}) * 3 + 1);
  net->eval();
  save_model_file(dir / "m.safetensors", *net, meta);

  LoadedModel loaded = load_model_file(dir / "m.safetensors");
  auto x = torch::randn({4, 1, 28, 28});
  EXPECT_TRUE(torch::equal(net->forward(x), loaded.network->forward(x)));
  EXPECT_EQ(loaded.metadata.class_names(), meta.class_names());
  EXPECT_EQ(loaded.metadata.class_names()[9], "9");
  EXPECT_EQ(loaded.metadata.config.options["nf"], 4);
  EXPECT_DOUBLE_EQ(loaded.metadata.std[0], 0.35);
}

TEST(ModelFileTest, PlainSafetensorsWithoutMetadataIsExplained) {
  testing::TempDir dir;
  SafetensorsContent content;
  content.tensors["w"] = torch::ones({1});
  save_safetensors(dir / "plain.safetensors", content);
  try {
    load_model_file(dir / "plain.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("`weights`"), std::string::npos) << e.what();
  }
}

TEST(ModelFileTest, NewerFormatVersionIsRejected) {
  nlohmann::json j = ModelMetadata().to_json();
  j["format_version"] = kModelFormatVersion + 1;
  EXPECT_THROW(ModelMetadata::from_json(j, "future.safetensors"), Error);
}

}  // namespace gpulab::models
