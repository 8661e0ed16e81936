// Reading weight files: DataParallel's "module." prefix on plain state dicts,
// torch.save() files (.pth): zip archives read, legacy and damaged ones refused.
#include <gtest/gtest.h>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstdlib>

#include "gpulab/core/error.h"
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

const std::string kWeightFileFixtureDir = std::string(GPULAB_SOURCE_DIR) + "/tests/models/fixtures";

// The message of the Error(kCorruptData) reading `path` throws.
std::string weight_file_corrupt_error(const std::string& path) {
  try {
    read_weight_file(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "'" << path << "' was read";
  return "";
}

// A zip archive as torch.save writes one, holding `pickle` as its data.pkl.
void write_torch_save_archive(const std::string& path, const std::string& pickle) {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeEndOfFile();
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

// fixtures/make_torch_save_fixtures.py: DataParallel state dicts, bare and in
// a training checkpoint (epoch, optimizer state, ...), as PyTorch 1.13 writes them.
TEST(WeightFileTest, ReadsTorchSaveStateDictsAndCheckpoints) {
  for (const char* name : {"torch_save_state_dict.pth", "torch_save_checkpoint.pth"}) {
    const WeightFile w = read_weight_file(kWeightFileFixtureDir + "/" + name);
    EXPECT_EQ(w.format, "pytorch") << name;
    EXPECT_FALSE(w.metadata.has_value()) << name;
    ASSERT_EQ(w.tensors.size(), 7u) << name;  // without "module."
    EXPECT_TRUE(torch::equal(w.tensors.at("0.weight"),
                             0.5 * torch::arange(6, torch::kFloat32).reshape({3, 2, 1, 1})));
    EXPECT_TRUE(torch::equal(w.tensors.at("0.bias"), torch::tensor({-1.0f, 0.0f, 1.0f})));
    EXPECT_TRUE(torch::equal(w.tensors.at("1.weight"), torch::tensor({1.0f, 2.0f, 3.0f})));
    EXPECT_TRUE(torch::equal(w.tensors.at("1.bias"), torch::tensor({0.1f, 0.2f, 0.3f})));
    EXPECT_TRUE(torch::equal(w.tensors.at("1.running_mean"), torch::tensor({-0.5f, 0.0f, 0.5f})));
    EXPECT_TRUE(torch::equal(w.tensors.at("1.running_var"), torch::tensor({1.0f, 4.0f, 9.0f})));
    EXPECT_EQ(w.tensors.at("1.num_batches_tracked").scalar_type(), torch::kInt64);
    EXPECT_EQ(w.tensors.at("1.num_batches_tracked").item<int64_t>(), 7);
    // Into the same network built in C++.
    torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 1)),
                              torch::nn::BatchNorm2d(3));
    load_state_dict(*net, w.tensors, w.path);
    EXPECT_TRUE(torch::equal(state_dict(*net).at("1.running_var"), w.tensors.at("1.running_var")));
  }
}

// Eromera/erfnet_pytorch's checkpoints were saved on a GPU ("cuda:0").
TEST(WeightFileTest, TorchSaveTensorsFromAGpuLoadOntoTheCpu) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-torch is not installed";
  testing::TempDir dir;
  // torch.save records each storage's location; "cuda:0" without moving data.
  const std::string cmd = "/usr/bin/python3 -c \"import torch, torch.serialization as s; "
                          "s.location_tag = lambda storage: 'cuda:0'; "
                          "torch.save({'module.w': torch.arange(6.).reshape(2, 3)}, '" +
                          (dir / "gpu.pth") + "')\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ASSERT_NE(testing::read_bytes(dir / "gpu.pth").find("cuda:0"), std::string::npos);
  const WeightFile w = read_weight_file(dir / "gpu.pth");
  ASSERT_TRUE(w.tensors.count("w"));
  EXPECT_TRUE(w.tensors.at("w").device().is_cpu());
  EXPECT_TRUE(torch::equal(w.tensors.at("w"), torch::arange(6, torch::kFloat32).reshape({2, 3})));
}

TEST(WeightFileTest, LegacyTorchSaveFileGetsTheCommandThatSavesItAgain) {
  testing::TempDir dir;
  // The start of torch.save(sd, FILE, _use_new_zipfile_serialization=False):
  // PROTO 2, torch's magic number as a LONG1, then the protocol version.
  testing::write_bytes(dir / "old.pth",
                       std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
                                   "\x2e\x80\x02\x4d\xe9\x03\x2e",
                                   21));
  const std::string msg = weight_file_corrupt_error(dir / "old.pth");
  EXPECT_NE(msg.find("'" + (dir / "old.pth") + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("before 1.6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("python3 -c \"import torch; torch.save(torch.load('" + (dir / "old.pth") +
                     "', map_location='cpu'), 'new.pth')\""),
            std::string::npos)
      << msg;
}

TEST(WeightFileTest, DamagedTorchSaveFilesAreRefusedNamingTheFile) {
  testing::TempDir dir;
  const std::string whole = testing::read_bytes(kWeightFileFixtureDir + "/torch_save_state_dict.pth");
  testing::write_bytes(dir / "cut.pth", whole.substr(0, whole.size() / 2));
  std::string msg = weight_file_corrupt_error(dir / "cut.pth");
  EXPECT_NE(msg.find("'" + (dir / "cut.pth") + "' is truncated or damaged"), std::string::npos)
      << msg;
  // Archives whose pickle is no state dict, or no pickle torch.save writes.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("\x80\x02\xff junk"), "opcode 0xff"},
      {std::string("\x80\x02}X\x01\x00\x00\x00nK\x03s.", 13), "entry 'n' is a Int"},
      {std::string("\x80\x02]K\x01" "a."), "not a state dict"},  // [1]
      {std::string("\x80\x02}."), "holds no tensors"},
      {std::string("\x80\x02}X\x01\x00\x00\x00n", 9), "ends early"},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const std::string path = dir / ("bad" + std::to_string(k) + ".pth");
    write_torch_save_archive(path, cases[k].first);
    msg = weight_file_corrupt_error(path);
    EXPECT_NE(msg.find("torch.save file '" + path + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(cases[k].second), std::string::npos) << msg;
  }
}

}  // namespace gpulab::models
