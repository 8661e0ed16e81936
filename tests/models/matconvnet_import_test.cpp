// A MatConvNet VGG file through the generic import path: the network is built
// from what the file says, predicts, and converts to safetensors unchanged.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/export.h"
#include "gpulab/models/pretrained.h"
#include "tests/support/matconvnet_writer.h"
#include "tests/support/test_util.h"

namespace gpulab::models {

TEST(MatConvNetImportTest, BuildsTheVggTheFileDescribesAndConvertsToSafetensors) {
  testing::TempDir dir;
  testing::write_matconvnet(dir / "vgg.mat", testing::make_fake_vgg(11, 2, 8, 3));
  LoadedModel model = load_pretrained("", dir / "vgg.mat");
  EXPECT_EQ(model.metadata.config.arch, "vgg11");
  EXPECT_EQ(model.metadata.config.options["width"], 2);
  EXPECT_EQ(model.metadata.config.options["hidden"], 8);
  EXPECT_EQ(model.metadata.class_names(),
            (std::vector<std::string>{"class 0", "class 1", "class 2"}));
  EXPECT_NEAR(model.metadata.mean[0], 123.68 / 255, 1e-6);  // stored as single
  EXPECT_NEAR(model.metadata.std[2], 1 / 255.0, 1e-12);
  torch::NoGradGuard no_grad;
  const auto& c = model.metadata.config;
  auto x = torch::randn({2, 3, c.height, c.width});
  auto out = model.network->forward(x);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_THROW(load_pretrained("vgg16", dir / "vgg.mat"), Error);

  export_safetensors(model, dir / "vgg.safetensors");
  LoadedModel back = load_pretrained("vgg11", dir / "vgg.safetensors");
  EXPECT_TRUE(torch::equal(back.network->forward(x), out));
  EXPECT_EQ(back.metadata.class_names(), model.metadata.class_names());
}

}  // namespace gpulab::models
