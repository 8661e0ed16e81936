// Transfer learning and weight interchange through the CLI: pre-train on five
// Fashion-MNIST classes, transfer to the other five with a new head and learn-
// rate factors, export, and predict from exported weights with no run folder.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/config_file.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/scripted_module.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

class CliTransferTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    // clang-format off
    pretrain_ = new testing::CommandResult(run_gpulab(
        {"train", "--data", testing::fashion_mnist_dir(), "--classes", "0,1,2,3,4",
         "--limit", "1000", "--out", *dir_ / "pre", "--epochs", "1", "--batch-size", "64",
         "--env", "cpu", "--quiet"}));
    // clang-format on
  }
  static void TearDownTestSuite() {
    delete pretrain_;
    delete dir_;
  }
  static std::string pre_model() { return *dir_ / "pre/model.safetensors"; }
  static testing::TempDir* dir_;
  static testing::CommandResult* pretrain_;
};
testing::TempDir* CliTransferTest::dir_ = nullptr;
testing::CommandResult* CliTransferTest::pretrain_ = nullptr;

namespace {

nlohmann::json model_metadata(const std::string& model_file) {
  return nlohmann::json::parse(models::load_safetensors(model_file).metadata.at("gpulab"));
}

}  // namespace

TEST_F(CliTransferTest, TransferReplacesTheHeadAndKeepsFrozenLayers) {
  ASSERT_EQ(pretrain_->exit_code, 0) << pretrain_->output;
  const std::string out = *dir_ / "transfer";
  // clang-format off
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--classes",
                       "Sandal,Shirt,Sneaker,Bag,Ankle boot,Dress", "--per-class", "30",
                       "--weights", pre_model(), "--num-classes", "6", "--freeze", "layer1.*",
                       "--learn-rate-factor", "fc.*=20", "--learn-rate", "0.001",
                       "--epochs", "1", "--env", "cpu", "--out", out});
  // clang-format on
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("new fc head for 6 classes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Frozen: 3 parameter tensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Learn-rate factor 20: 2 tensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("180 training images"), std::string::npos) << r.output;
  auto before = models::load_safetensors(pre_model()).tensors;
  auto after = models::load_safetensors(out + "/model.safetensors").tensors;
  EXPECT_TRUE(torch::equal(before.at("layer1.conv.weight"), after.at("layer1.conv.weight")));
  EXPECT_TRUE(torch::equal(before.at("layer1.bn.running_var"), after.at("layer1.bn.running_var")));
  EXPECT_FALSE(torch::equal(before.at("layer2.conv.weight"), after.at("layer2.conv.weight")));
  EXPECT_EQ(after.at("fc.weight").size(0), 6);
  auto spec = core::load_yaml_file(out + "/spec.yaml");
  EXPECT_EQ(spec["model"], "basic_cnn");  // taken from the weights file
  EXPECT_EQ(spec["options"]["learn_rate_factors"][0], "fc.*=20");
}

TEST_F(CliTransferTest, MismatchedHeadAndBadPatternsAreExplained) {
  ASSERT_EQ(pretrain_->exit_code, 0) << pretrain_->output;
  // clang-format off
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "100",
                       "--weights", pre_model(), "--env", "cpu", "--out", *dir_ / "x1"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("has a 5-class head but the training data has 10 classes; add "
                          "--num-classes 10"), std::string::npos) << r.output;
  r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "100",
                  "--weights", pre_model(), "--num-classes", "10", "--freeze", "features.*",
                  "--env", "cpu", "--out", *dir_ / "x2"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("pattern 'features.*' matches no parameter"), std::string::npos)
      << r.output;
  r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "100",
                  "--weights", pre_model(), "--model", "lenet5", "--num-classes", "10",
                  "--env", "cpu", "--out", *dir_ / "x3"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("holds a basic_cnn network but --model is lenet5"), std::string::npos)
      << r.output;
  // clang-format on
}

TEST_F(CliTransferTest, ExportedWeightsPredictWithoutARunFolder) {
  ASSERT_EQ(pretrain_->exit_code, 0) << pretrain_->output;
  const std::string st = *dir_ / "exported.safetensors";
  const std::string ts = *dir_ / "exported.pt";
  auto r = run_gpulab({"export", "--model", *dir_ / "pre", "--format", "safetensors", "--out", st});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_gpulab({"export", "--model", *dir_ / "pre", "--format", "torchscript", "--out", ts});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_gpulab({"export", "--model", *dir_ / "pre", "--format", "onnx", "--out", *dir_ / "x"});
  EXPECT_EQ(r.exit_code, 2) << r.output;

  torch::Tensor image = torch::full({1, 28, 28}, 200, torch::kUInt8);
  testing::write_pnm(*dir_ / "img.pgm", image);
  auto scores_of = [&](const std::vector<std::string>& model_args) {
    std::vector<std::string> args = {"predict", "--input", *dir_ / "img.pgm", "--env",
                                     "cpu",     "--json",  *dir_ / "p.json"};
    args.insert(args.end(), model_args.begin(), model_args.end());
    auto result = run_gpulab(args);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return nlohmann::json::parse(core::read_file(*dir_ / "p.json"))[0]["scores"];
  };
  const auto reference = scores_of({"--model", *dir_ / "pre"});
  EXPECT_EQ(scores_of({"--model", "basic_cnn", "--weights", st}), reference);
  const auto from_ts = scores_of({"--model", "", "--weights", ts});
  ASSERT_EQ(from_ts.size(), reference.size());
  for (size_t i = 0; i < reference.size(); ++i) {
    EXPECT_NEAR(from_ts[i].get<double>(), reference[i].get<double>(), 1e-5);
  }
}

TEST_F(CliTransferTest, NumClassesWithoutWeightsIsRefused) {
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "100",
                       "--num-classes", "3", "--env", "cpu", "--out", *dir_ / "nc"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--num-classes replaces the classifier head of --weights"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(*dir_ / "nc"));
}

// Regression: an archive without gpulab.json (torch.jit.save in Python) failed
// with "model 'torchscript' needs the archive", and one that does not take
// 3x224x224 images with a raw TorchScript traceback.
TEST_F(CliTransferTest, PythonTorchScriptArchivePredictsAndExportsAtAGivenInputSize) {
  const std::string pt = *dir_ / "py_grey.pt";
  testing::write_scripted_cnn(pt, 1, 4);
  testing::write_pnm(*dir_ / "grey.pgm", torch::full({1, 28, 28}, 90, torch::kUInt8));
  const std::vector<std::string> predict = {"predict",          "--model", "torchscript",
                                            "--weights",        pt,        "--input",
                                            *dir_ / "grey.pgm", "--env",   "cpu"};
  auto r = run_gpulab(predict);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'" + pt + "' does not take a [1, 3, 224, 224] image batch"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("Traceback"), std::string::npos) << r.output;

  std::vector<std::string> sized = predict;
  sized.insert(sized.end(),
               {"--channels", "1", "--image-size", "28x28", "--json", *dir_ / "py.json"});
  r = run_gpulab(sized);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(core::read_file(*dir_ / "py.json"))[0]["scores"].size(), 4u);

  // clang-format off
  r = run_gpulab({"export", "--model", "torchscript", "--weights", pt, "--channels", "1",
                  "--image-size", "28x28", "--format", "torchscript", "--out", *dir_ / "py2.pt"});
  // clang-format on
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("input 1x28x28"), std::string::npos) << r.output;
}

// Regression: training on a TorchScript archive recomputed the normalisation
// from the data instead of taking the archive's (gpulab.json), or ImageNet's
// for RGB images, as predict does.
TEST_F(CliTransferTest, TorchScriptFeatureExtractorKeepsTheArchiveNormalisation) {
  ASSERT_EQ(pretrain_->exit_code, 0) << pretrain_->output;
  const std::string exported = *dir_ / "pre_norm.pt";
  auto r = run_gpulab(
      {"export", "--model", *dir_ / "pre", "--format", "torchscript", "--out", exported});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // clang-format off
  const std::vector<std::string> common = {"train", "--data", testing::fashion_mnist_dir(),
                                           "--classes", "5,6", "--per-class", "20",
                                           "--model", "torchscript", "--num-classes", "2",
                                           "--epochs", "1", "--env", "cpu", "--quiet"};
  // clang-format on
  std::vector<std::string> args = common;
  args.insert(args.end(), {"--weights", exported, "--out", *dir_ / "ts_fe"});
  r = run_gpulab(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(model_metadata(*dir_ / "ts_fe/model.safetensors")["normalization"],
            model_metadata(pre_model())["normalization"]);

  // No gpulab.json, grey IDX images replicated to RGB: ImageNet's statistics.
  const std::string rgb = *dir_ / "py_rgb.pt";
  testing::write_scripted_cnn(rgb, 3, 5);
  args = common;
  args.insert(args.end(), {"--channels", "3", "--weights", rgb, "--out", *dir_ / "ts_rgb"});
  r = run_gpulab(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto norm = model_metadata(*dir_ / "ts_rgb/model.safetensors")["normalization"];
  EXPECT_EQ(norm["mean"], nlohmann::json({0.485, 0.456, 0.406})) << norm;
  EXPECT_EQ(norm["std"], nlohmann::json({0.229, 0.224, 0.225})) << norm;
}

// Regression: predict/export built the stem from the input size, not from
// conv1.weight, and suggested --model-option, which they do not take.
TEST_F(CliTransferTest, PlainResnetWeightsPredictAndExportAtAnyInputSize) {
  models::ModelConfig c;
  c.arch = "resnet18";
  c.num_classes = 4;
  c.in_channels = 3;
  c.height = c.width = 224;  // torchvision's 7x7 stem
  models::SafetensorsContent content;
  content.tensors = models::state_dict(*models::create_model(c));
  const std::string plain = *dir_ / "r18_plain.safetensors";
  models::save_safetensors(plain, content);
  testing::write_pnm(*dir_ / "rgb32.ppm", torch::full({3, 32, 32}, 120, torch::kUInt8));
  auto r = run_gpulab({"predict", "--model", "resnet18", "--weights", plain, "--image-size",
                       "32x32", "--input", *dir_ / "rgb32.ppm", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("--model-option"), std::string::npos) << r.output;
  r = run_gpulab({"export", "--model", "resnet18", "--weights", plain, "--image-size", "32x32",
                  "--format", "torchscript", "--out", *dir_ / "r18_32.pt"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// Regression: a __metadata__ that is not an object gave a raw JSON error
// without the file name, exit 1.
TEST_F(CliTransferTest, SafetensorsWithBadMetadataExitsWith2NamingTheFile) {
  std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("__metadata__":"abc"})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  const std::string file = *dir_ / "bad_meta.safetensors";
  testing::write_bytes(file, bytes + header + std::string(4, '\0'));
  testing::write_pnm(*dir_ / "grey.pgm", torch::full({1, 28, 28}, 50, torch::kUInt8));
  auto r = run_gpulab({"predict", "--model", "basic_cnn", "--weights", file, "--input",
                       *dir_ / "grey.pgm", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'" + file + "': safetensors __metadata__ must be an object of strings"),
            std::string::npos)
      << r.output;
}

}  // namespace gpulab
