// Fast neural style transfer through the CLI: Debian's photos (opencv-doc,
// skimage) restyled as starry_night.jpg through a VGG-16 the test makes
// (seeded initialisation, reduced width: no pretrained weights here).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gpulab/core/atomic_file.h"
#include "gpulab/data/image_decode.h"
#include "gpulab/models/network.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

namespace {

const char* const kOpencvData = "/usr/share/doc/opencv-doc/examples/data/";
const char* const kSkimageData = "/usr/lib/python3/dist-packages/skimage/data/";

std::vector<nlohmann::json> style_history(const std::string& run) {
  std::vector<nlohmann::json> rows;
  std::istringstream lines(core::read_file(run + "/history.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

}  // namespace

class CliStyleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    photos_ = *dir_ / "photos";
    fs::create_directories(photos_);
    for (const char* name : {"baboon.jpg", "fruits.jpg", "home.jpg", "butterfly.jpg",
                             "messi5.jpg", "apple.jpg", "orange.jpg", "building.jpg"}) {
      fs::copy_file(std::string(kOpencvData) + name, photos_ + "/" + name);
    }
    for (const char* name :
         {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "ihc.png", "retina.jpg"}) {
      fs::copy_file(std::string(kSkimageData) + name, photos_ + "/" + name);
    }
    // A VGG-16 at an eighth of the width: random features still carry
    // texture statistics (the premise), and the loss runs in seconds.
    torch::manual_seed(7);
    models::ModelConfig config;
    config.arch = "vgg16";
    config.num_classes = 10;
    config.in_channels = 3;
    config.height = config.width = 32;
    config.options = {{"width", 8}, {"hidden", 16}};
    const auto vgg = models::create_model(config);
    models::SafetensorsContent weights;
    weights.tensors = models::state_dict(*vgg);
    vgg_ = *dir_ / "vgg16.safetensors";
    models::save_safetensors(vgg_, weights);
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<std::string> train_args(const std::string& out,
                                             const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"train",
                                     "--task",
                                     "style",
                                     "--data",
                                     photos_,
                                     "--style-image",
                                     std::string(kOpencvData) + "starry_night.jpg",
                                     "--style-size",
                                     "96",
                                     "--loss-network-weights",
                                     vgg_,
                                     "--image-size",
                                     "64x64",
                                     "--out",
                                     out,
                                     "--env",
                                     "cpu",
                                     "--seed",
                                     "1",
                                     "--verbose-frequency",
                                     "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  static testing::CommandResult train(const std::string& out,
                                      const std::vector<std::string>& extra) {
    return run_gpulab(train_args(out, extra));
  }

  static testing::TempDir* dir_;
  static std::string photos_, vgg_;
};
testing::TempDir* CliStyleTest::dir_ = nullptr;
std::string CliStyleTest::photos_, CliStyleTest::vgg_;

// 16 photos, batch 4 (the task's default), 6 epochs: 24 steps of Adam.
TEST_F(CliStyleTest, TrainingLowersTheStyleLossWritesPreviewsAndPredictKeepsImageSizes) {
  const std::string run = *dir_ / "trained";
  const std::string preview = std::string(kOpencvData) + "fruits.jpg";
  const auto r = train(run, {"--epochs", "6", "--learn-rate", "1e-2", "--preview-image", preview,
                             "--checkpoint-frequency", "8", "--checkpoint-unit",
                             "iteration"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Style"), std::string::npos) << r.output;  // its progress column

  const auto rows = style_history(run);
  ASSERT_EQ(rows.size(), 24u);
  for (const char* key : {"loss", "content_loss", "style_loss", "tv_loss"}) {
    EXPECT_TRUE(rows[0].contains(key)) << rows[0].dump();
  }
  const auto first = (rows[0]["style_loss"].get<double>() + rows[1]["style_loss"].get<double>()) / 2;
  const auto last =
      (rows[22]["style_loss"].get<double>() + rows[23]["style_loss"].get<double>()) / 2;
  std::printf("style loss: first two steps %.4g, last two %.4g (%.1f%% lower)\n", first, last,
              100 * (1 - last / first));
  EXPECT_LT(last, 0.5 * first);
  for (const char* name : {"iteration-0000008.png", "iteration-0000016.png",
                           "iteration-0000024.png"}) {
    EXPECT_TRUE(fs::exists(run + "/previews/" + name)) << name;
  }

  // Fully convolutional: fruits.jpg keeps its own (non-square) size.
  const auto p = run_gpulab({"predict", "--model", run, "--input", preview, "--out",
                             *dir_ / "stylised"});
  ASSERT_EQ(p.exit_code, 0) << p.output;
  const at::Tensor in = data::decode_image_file(preview, 3, 0, 0);
  const at::Tensor out = data::decode_image_file(*dir_ / "stylised/fruits.png", 3, 0, 0);
  EXPECT_EQ(out.sizes(), in.sizes());
  EXPECT_GT((out.to(torch::kFloat32) - in.to(torch::kFloat32)).abs().mean().item<double>(), 5.0);
}

// export: safetensors with pytorch/examples' names, and TorchScript that
// Debian's PyTorch runs on 0-255 pixels to gpulab predict's image.
TEST_F(CliStyleTest, ExportWritesTheReferencesNamesAndATorchScriptModuleOnPixels) {
  const std::string run = *dir_ / "export-run";
  ASSERT_EQ(train(run, {"--epochs", "1"}).exit_code, 0);
  const std::string st = *dir_ / "style.safetensors", ts = *dir_ / "style.pt";
  ASSERT_EQ(run_gpulab({"export", "--model", run, "--format", "safetensors", "--out", st}).exit_code,
            0);
  const auto tensors = models::load_safetensors(st).tensors;
  EXPECT_EQ(tensors.size(), 62u);
  for (const char* name : {"conv1.conv2d.weight", "in1.weight", "res5.conv2.conv2d.bias",
                           "deconv1.conv2d.weight", "in5.bias", "deconv3.conv2d.bias"}) {
    EXPECT_EQ(tensors.count(name), 1u) << name;
  }
  const auto e = run_gpulab({"export", "--model", run, "--format", "torchscript", "--out", ts});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Debian's python3-torch is not installed";
  }
  // A 40x56 image (sides multiples of 4 keep the size) through both.
  const std::string image = *dir_ / "small.ppm";
  const at::Tensor pixels =
      data::decode_image_file(std::string(kOpencvData) + "baboon.jpg", 3, 40, 56);
  testing::write_pnm(image, pixels);
  const auto p = run_gpulab({"predict", "--model", run, "--input", image, "--out",
                             *dir_ / "export-out", "--format", "ppm"});
  ASSERT_EQ(p.exit_code, 0) << p.output;
  const std::string script =
      "import sys, torch\n"
      "m = torch.jit.load(sys.argv[1])\n"
      "raw = open(sys.argv[2], 'rb').read()\n"
      "x = torch.frombuffer(bytearray(raw[-40*56*3:]), dtype=torch.uint8)\n"
      "x = x.view(40, 56, 3).permute(2, 0, 1).float().unsqueeze(0)\n"
      "y = m(x).clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).contiguous()\n"
      "open(sys.argv[3], 'wb').write(bytes(y.flatten().tolist()))\n";
  testing::write_bytes(*dir_ / "run_ts.py", script);
  const auto py = testing::run_shell("/usr/bin/python3 " + *dir_ / "run_ts.py" + " " + ts + " " +
                                     image + " " + *dir_ / "ts.raw");
  ASSERT_EQ(py.exit_code, 0) << py.output;
  const std::string torch_bytes = testing::read_bytes(*dir_ / "ts.raw");
  const at::Tensor ours = data::decode_image_file(*dir_ / "export-out/small.ppm", 3, 0, 0);
  ASSERT_EQ(ours.sizes(), (std::vector<int64_t>{3, 40, 56}));
  ASSERT_EQ(torch_bytes.size(), 40u * 56 * 3);
  const at::Tensor theirs =
      torch::from_blob(const_cast<char*>(torch_bytes.data()), {40, 56, 3}, torch::kUInt8)
          .permute({2, 0, 1})
          .to(torch::kInt32);
  // Rounding of values on .5 may differ by one level.
  EXPECT_LE((ours.to(torch::kInt32) - theirs).abs().max().item<int>(), 1);
}

TEST_F(CliStyleTest, AResumedRunEndsWithTheSameWeights) {
  const std::string straight = *dir_ / "straight", resumed = *dir_ / "resumed";
  ASSERT_EQ(train(straight, {"--epochs", "2"}).exit_code, 0);
  const auto first = train(resumed, {"--epochs", "1"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto rest = train(resumed, {"--epochs", "2", "--resume"});
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  testing::expect_same_weights(straight + "/model.safetensors", resumed + "/model.safetensors", 0,
                               0);
}

// Two ranks of two images each see the batches one process sees, so every
// step's global loss is the same. Weights are not compared bit for bit: the
// conv biases before an instance norm have a true gradient of zero, which
// Adam turns into +-learn-rate steps of float noise that depends on the
// summation order.
TEST_F(CliStyleTest, TwoRanksTrainAsOneProcess) {
  auto command = [&](const std::string& out, const std::string& env) {
    std::string line = testing::gpulab_binary();
    for (const std::string& a : train_args(out, {"--epochs", "2", "--threads", "1"})) {
      line += " '" + (a == "cpu" ? env : a) + "'";
    }
    return line;
  };
  const auto one = testing::run_shell(command(*dir_ / "one", "cpu"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = testing::run_shell(testing::gpulab_binary() + " launch -n 2 -- " +
                                      command(*dir_ / "two", "parallel"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto a = style_history(*dir_ / "one"), b = style_history(*dir_ / "two");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    for (const char* key : {"loss", "content_loss", "style_loss"}) {
      const double x = a[i][key].get<double>(), y = b[i][key].get<double>();
      // The first step's loss comes from the same weights: equal to float rounding.
      EXPECT_NEAR(x, y, (i == 0 ? 1e-5 : 1e-3) * std::abs(x)) << key << " at row " << i;
    }
  }
}

TEST_F(CliStyleTest, MissingStyleImageOrLossWeightsAreUsageErrorsNamingTheFlag) {
  const auto no_style = run_gpulab({"train", "--task", "style", "--data", photos_,
                                    "--loss-network-weights", vgg_, "--out", *dir_ / "bad1",
                                    "--env", "cpu"});
  EXPECT_EQ(no_style.exit_code, 2) << no_style.output;
  EXPECT_NE(no_style.output.find("--style-image"), std::string::npos) << no_style.output;
  const auto no_vgg = run_gpulab({"train", "--task", "style", "--data", photos_, "--style-image",
                                  std::string(kOpencvData) + "starry_night.jpg", "--out",
                                  *dir_ / "bad2", "--env", "cpu"});
  EXPECT_EQ(no_vgg.exit_code, 2) << no_vgg.output;
  EXPECT_NE(no_vgg.output.find("--loss-network-weights"), std::string::npos) << no_vgg.output;
  const auto bad_layer = train(*dir_ / "bad3", {"--content-layers", "relu9_9"});
  EXPECT_EQ(bad_layer.exit_code, 2) << bad_layer.output;
  EXPECT_NE(bad_layer.output.find("relu9_9"), std::string::npos) << bad_layer.output;
}

}  // namespace gpulab
