// Export: safetensors and TorchScript files that gpulab, LibTorch and Python's
// PyTorch read back with identical outputs.
#include <gtest/gtest.h>

#include <torch/script.h>
#include <torch/torch.h>

#include "gpulab/models/export.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

LoadedModel trained_looking_model(const std::string& arch, int64_t size) {
  LoadedModel m;
  m.metadata = torchvision_metadata(arch, 4);
  m.metadata.config.height = m.metadata.config.width = size;
  m.metadata.config.options = {{"hidden", 32}};
  m.network = create_model(m.metadata.config);
  // Non-default batch-norm statistics must travel too.
  m.network->train();
  {
    torch::NoGradGuard no_grad;
    m.network->forward(torch::randn({4, 3, size, size}) * 2 + 0.5);
  }
  m.network->eval();
  return m;
}

torch::Tensor outputs(Network& net, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  net.eval();
  return net.forward(x);
}

bool has_python_torch() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

}  // namespace

TEST(ExportTest, SafetensorsRoundTripGivesIdenticalOutputs) {
  testing::TempDir dir;
  LoadedModel model = trained_looking_model("resnet18", 32);
  export_safetensors(model, dir / "r.safetensors");
  LoadedModel back = load_pretrained("", dir / "r.safetensors");
  auto x = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::equal(outputs(*model.network, x), outputs(*back.network, x)));
  EXPECT_EQ(back.metadata.config.num_classes, 4);
}

TEST(ExportTest, TorchScriptKeepsNamesAndOutputs) {
  testing::TempDir dir;
  for (const std::string arch : {"resnet18", "vgg11_bn", "alexnet"}) {
    LoadedModel model = trained_looking_model(arch, 64);
    export_torchscript(model, dir / (arch + ".pt"));
    torch::jit::Module loaded = torch::jit::load(dir / (arch + ".pt"));
    loaded.eval();
    std::map<std::string, torch::Tensor> names;
    for (const auto& p : loaded.named_parameters()) names[p.name] = p.value;
    for (const auto& b : loaded.named_buffers()) names[b.name] = b.value;
    const auto expected = state_dict(*model.network);
    ASSERT_EQ(names.size(), expected.size()) << arch;
    for (const auto& [name, tensor] : expected) {
      ASSERT_TRUE(names.count(name)) << arch << ": " << name;
      EXPECT_TRUE(torch::equal(names[name], tensor)) << name;
    }
    // A batch of another size than the traced one.
    auto x = torch::randn({3, 3, 64, 64});
    torch::NoGradGuard no_grad;
    auto out = loaded.forward({x}).toTensor();
    EXPECT_TRUE(torch::allclose(out, outputs(*model.network, x), 1e-5, 1e-6)) << arch;
    // And it imports back as weights, with its metadata.
    LoadedModel again = load_pretrained("", dir / (arch + ".pt"));
    EXPECT_EQ(again.metadata.config.arch, arch);
    EXPECT_TRUE(torch::allclose(outputs(*again.network, x), out, 1e-5, 1e-6)) << arch;
  }
}

TEST(ExportTest, PythonTorchReadsTheTorchScriptFile) {
  if (!has_python_torch()) GTEST_SKIP() << "python3-torch is not installed";
  testing::TempDir dir;
  LoadedModel model = trained_looking_model("resnet18", 32);
  export_torchscript(model, dir / "r.pt");
  auto x = torch::randn({2, 3, 32, 32});
  const auto expected = outputs(*model.network, x);
  torch::save(x, dir / "x.pt");  // read back with torch.jit.load as a tensor container
  const std::string script =
      "import torch, json, sys\n"
      "m = torch.jit.load(sys.argv[1]); m.eval()\n"
      "x = next(torch.jit.load(sys.argv[2]).parameters())\n"
      "extra = {'gpulab.json': ''}\n"
      "torch.jit.load(sys.argv[1], _extra_files=extra)\n"
      "meta = json.loads(extra['gpulab.json'])\n"
      "assert meta['model']['arch'] == 'resnet18', meta\n"
      "assert 'layer4.1.bn2.running_var' in m.state_dict()\n"
      "with torch.no_grad(): y = m(x)\n"
      "print(' '.join('%.7e' % v for v in y.flatten().tolist()))\n";
  testing::write_bytes(dir / "check.py", script);
  const std::string cmd = "/usr/bin/python3 " + (dir / "check.py") + " " + (dir / "r.pt") + " " +
                          (dir / "x.pt") + " > " + (dir / "y.txt");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::istringstream values(testing::read_bytes(dir / "y.txt"));
  std::vector<float> y;
  for (float v; values >> v;) y.push_back(v);
  ASSERT_EQ(static_cast<int64_t>(y.size()), expected.numel());
  EXPECT_TRUE(torch::allclose(torch::tensor(y).reshape(expected.sizes()), expected, 1e-4, 1e-5));
}

// The safetensors export is what torchvision's load_state_dict(strict=True)
// takes (parsed here with the format's reference layout: u64 + JSON + data).
TEST(ExportTest, TorchvisionLoadsTheSafetensorsExport) {
  if (std::system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-torchvision is not installed";
  testing::TempDir dir;
  LoadedModel model = trained_looking_model("resnet18", 64);
  export_safetensors(model, dir / "r.safetensors");
  auto x = torch::randn({2, 3, 64, 64});
  torch::save(x, dir / "x.pt");
  const std::string script =
      "import json, struct, sys, torch, torchvision\n"
      "raw = open(sys.argv[1], 'rb').read()\n"
      "n = struct.unpack('<Q', raw[:8])[0]\n"
      "header = json.loads(raw[8:8 + n]); data = raw[8 + n:]\n"
      "meta = header.pop('__metadata__')\n"
      "assert json.loads(meta['gpulab'])['model']['arch'] == 'resnet18'\n"
      "kinds = {'F32': torch.float32, 'I64': torch.int64}\n"
      "sd = {k: torch.frombuffer(bytearray(data[v['data_offsets'][0]:v['data_offsets'][1]]),\n"
      "      dtype=kinds[v['dtype']]).reshape(v['shape']) for k, v in header.items()}\n"
      "m = torchvision.models.resnet18(num_classes=4)\n"
      "m.load_state_dict(sd, strict=True); m.eval()\n"
      "x = next(torch.jit.load(sys.argv[2]).parameters())\n"
      "with torch.no_grad(): y = m(x)\n"
      "print(' '.join('%.7e' % v for v in y.flatten().tolist()))\n";
  testing::write_bytes(dir / "check.py", script);
  const std::string cmd = "/usr/bin/python3 " + (dir / "check.py") + " " + (dir / "r.safetensors") +
                          " " + (dir / "x.pt") + " > " + (dir / "y.txt");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::istringstream values(testing::read_bytes(dir / "y.txt"));
  std::vector<float> y;
  for (float v; values >> v;) y.push_back(v);
  const auto expected = outputs(*model.network, x);
  ASSERT_EQ(static_cast<int64_t>(y.size()), expected.numel());
  EXPECT_TRUE(torch::allclose(torch::tensor(y).reshape(expected.sizes()), expected, 1e-4, 1e-5));
}

}  // namespace gpulab::models
