// MatConvNet VGG import: small .mat files written in MatConvNet's own layout
// (tests/support/matconvnet_writer) are checked for names, shapes, permuted
// values, metadata, and the errors for files that are no VGG.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <functional>

#include "gpulab/core/error.h"
#include "gpulab/models/matconvnet.h"
#include "tests/support/matconvnet_writer.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {
using testing::conv_layer_index;
using testing::fake_conv;
using testing::FakeLayer;
using testing::FakeNet;
using testing::make_fake_vgg;
using testing::MatFormat;
using testing::MatLayout;
using testing::write_matconvnet;

Error error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorKind::kInternal, "no error was thrown");
}

// The error for loading `net` written to `name`; expects kCorruptData naming the file.
std::string corrupt_error(const testing::TempDir& dir, const std::string& name,
                          const FakeNet& net) {
  write_matconvnet(dir / name, net);
  Error e = error_of([&] { load_matconvnet_vgg(dir / name); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
  EXPECT_NE(std::string(e.what()).find(dir / name), std::string::npos) << e.what();
  return e.what();
}

float element(const at::Tensor& t, const std::vector<int64_t>& index) {
  at::Tensor v = t;
  for (int64_t i : index) v = v[i];
  return v.item<float>();
}

}  // namespace

TEST(MatConvNetTest, ReadsVgg11NamesShapesAndMetadata) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, /*width=*/2, /*hidden=*/8, /*classes=*/3);
  write_matconvnet(dir / "vgg11.mat", net);
  MatConvNetImport m = load_matconvnet_vgg(dir / "vgg11.mat");
  EXPECT_EQ(m.arch, "vgg11");
  EXPECT_EQ(m.options, nlohmann::json({{"depth", 11}, {"width", 2}, {"hidden", 8}}));
  EXPECT_EQ(m.num_classes, 3);
  // torchvision vgg11: features.{0,3,6,8,11,13,16,18}, classifier.{0,3,6}.
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"features.0.weight", {2, 3, 3, 3}},      {"features.0.bias", {2}},
      {"features.3.weight", {4, 2, 3, 3}},      {"features.3.bias", {4}},
      {"features.6.weight", {8, 4, 3, 3}},      {"features.6.bias", {8}},
      {"features.8.weight", {8, 8, 3, 3}},      {"features.8.bias", {8}},
      {"features.11.weight", {16, 8, 3, 3}},    {"features.11.bias", {16}},
      {"features.13.weight", {16, 16, 3, 3}},   {"features.13.bias", {16}},
      {"features.16.weight", {16, 16, 3, 3}},   {"features.16.bias", {16}},
      {"features.18.weight", {16, 16, 3, 3}},   {"features.18.bias", {16}},
      {"classifier.0.weight", {8, 16 * 7 * 7}}, {"classifier.0.bias", {8}},
      {"classifier.3.weight", {8, 8}},          {"classifier.3.bias", {8}},
      {"classifier.6.weight", {3, 8}},          {"classifier.6.bias", {3}}};
  ASSERT_EQ(m.tensors.size(), expected.size());
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(m.tensors.count(name)) << name;
    const at::Tensor& t = m.tensors.at(name);
    EXPECT_EQ(t.sizes().vec(), shape) << name;
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
    EXPECT_TRUE(t.is_contiguous()) << name;
    EXPECT_TRUE(t.device().is_cpu()) << name;
  }
  EXPECT_EQ(m.class_names, net.classes);
  EXPECT_EQ(m.input_height, 32);
  EXPECT_EQ(m.input_width, 40);
}

TEST(MatConvNetTest, NamesConvsLikeTorchvisionForEveryDepth) {
  const std::map<int, std::vector<int>> torchvision_indices = {
      {11, {0, 3, 6, 8, 11, 13, 16, 18}},
      {13, {0, 2, 5, 7, 10, 12, 15, 17, 20, 22}},
      {16, {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28}},
      {19, {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34}}};
  testing::TempDir dir;
  for (const auto& [depth, indices] : torchvision_indices) {
    FakeNet net = make_fake_vgg(depth, /*width=*/1, /*hidden=*/4, /*classes=*/2);
    const std::string path = dir / fmt::format("vgg{}.mat", depth);
    write_matconvnet(path, net);
    MatConvNetImport m = load_matconvnet_vgg(path);
    EXPECT_EQ(m.arch, fmt::format("vgg{}", depth));
    EXPECT_EQ(m.options.at("depth"), depth);
    std::vector<std::string> expected;
    for (int i : indices) {
      expected.push_back(fmt::format("features.{}.bias", i));
      expected.push_back(fmt::format("features.{}.weight", i));
    }
    for (int i : {0, 3, 6}) {
      expected.push_back(fmt::format("classifier.{}.bias", i));
      expected.push_back(fmt::format("classifier.{}.weight", i));
    }
    std::sort(expected.begin(), expected.end());
    std::vector<std::string> names;
    for (const auto& [name, t] : m.tensors) names.push_back(name);
    EXPECT_EQ(names, expected) << "vgg" << depth;
    // The k-th conv lands at the k-th torchvision index.
    for (size_t k = 0; k < indices.size(); ++k) {
      const FakeLayer& layer = net.layers[conv_layer_index(net, static_cast<int>(k))];
      EXPECT_TRUE(
          torch::equal(m.tensors.at(fmt::format("features.{}.bias", indices[k])), layer.bias))
          << "vgg" << depth << " conv " << k;
    }
  }
}

TEST(MatConvNetTest, PermutesConvWeightsToTorchLayout) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  write_matconvnet(dir / "vgg11.mat", net);
  MatConvNetImport m = load_matconvnet_vgg(dir / "vgg11.mat");
  // weight[o][c][h][w] = W(h, w, c, o), element by element, for two convs.
  for (const auto& [k, name] :
       std::vector<std::pair<int, std::string>>{{0, "features.0"}, {3, "features.8"}}) {
    const FakeLayer& layer = net.layers[conv_layer_index(net, k)];
    const at::Tensor& weight = m.tensors.at(name + ".weight");
    for (int64_t o = 0; o < weight.size(0); ++o) {
      for (int64_t c = 0; c < weight.size(1); ++c) {
        for (int64_t h = 0; h < 3; ++h) {
          for (int64_t w = 0; w < 3; ++w) {
            ASSERT_EQ(element(weight, {o, c, h, w}), element(layer.weight, {h, w, c, o}))
                << name << " o=" << o << " c=" << c << " h=" << h << " w=" << w;
          }
        }
      }
    }
    EXPECT_TRUE(torch::equal(m.tensors.at(name + ".bias"), layer.bias)) << name;
  }
  // An asymmetric kernel pins h against w: W(0, 2, 1, 1) is weight[1][1][0][2].
  const FakeLayer& first = net.layers[conv_layer_index(net, 0)];
  EXPECT_EQ(element(m.tensors.at("features.0.weight"), {1, 1, 0, 2}),
            element(first.weight, {0, 2, 1, 1}));
  EXPECT_NE(element(m.tensors.at("features.0.weight"), {1, 1, 0, 2}),
            element(first.weight, {2, 0, 1, 1}));
}

TEST(MatConvNetTest, FlattensFc6InTorchOrderAndTransposesFc7Fc8) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  write_matconvnet(dir / "vgg11.mat", net);
  MatConvNetImport m = load_matconvnet_vgg(dir / "vgg11.mat");
  const FakeLayer& fc6 = net.layers[conv_layer_index(net, 8)];
  const at::Tensor& w6 = m.tensors.at("classifier.0.weight");
  for (int64_t o = 0; o < 8; ++o) {
    for (int64_t c = 0; c < 16; ++c) {
      for (int64_t h = 0; h < 7; ++h) {
        for (int64_t w = 0; w < 7; ++w) {
          ASSERT_EQ(element(w6, {o, c * 49 + h * 7 + w}), element(fc6.weight, {h, w, c, o}))
              << "o=" << o << " c=" << c << " h=" << h << " w=" << w;
        }
      }
    }
  }
  // The Linear on torch's flatten of a [1, C, 7, 7] map computes MatConvNet's
  // fc6: y(o) = sum over h, w, c of W(h, w, c, o) * x(c, h, w) + b(o).
  at::Tensor x = torch::randn({1, 16, 7, 7});
  at::Tensor torch_y =
      torch::nn::functional::linear(x.flatten(1), w6, m.tensors.at("classifier.0.bias"));
  at::Tensor matconvnet_y = torch::einsum("hwco,chw->o", {fc6.weight, x[0]}) + fc6.bias;
  EXPECT_TRUE(torch::allclose(torch_y[0], matconvnet_y, 1e-4, 1e-4));

  for (const auto& [k, name] :
       std::vector<std::pair<int, std::string>>{{9, "classifier.3"}, {10, "classifier.6"}}) {
    const FakeLayer& fc = net.layers[conv_layer_index(net, k)];
    const at::Tensor& weight = m.tensors.at(name + ".weight");
    for (int64_t o = 0; o < weight.size(0); ++o) {
      for (int64_t c = 0; c < weight.size(1); ++c) {
        ASSERT_EQ(element(weight, {o, c}), element(fc.weight, {0, 0, c, o})) << name;
      }
    }
    EXPECT_TRUE(torch::equal(m.tensors.at(name + ".bias"), fc.bias)) << name;
  }
}

TEST(MatConvNetTest, MeanIsAverageImageOver255AndStdIsOneOver255) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  write_matconvnet(dir / "vgg11.mat", net);
  MatConvNetImport m = load_matconvnet_vgg(dir / "vgg11.mat");
  ASSERT_EQ(m.mean.size(), 3u);
  ASSERT_EQ(m.std.size(), 3u);
  const std::vector<double> average = {123.68f, 116.779f, 103.939f};  // stored as single
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(m.mean[c], average[c] / 255.0, 1e-9) << c;
    EXPECT_DOUBLE_EQ(m.std[c], 1.0 / 255.0) << c;
  }
}

TEST(MatConvNetTest, MeanOfAFullAverageImageIsTakenPerChannel) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  net.average_image = torch::rand({6, 5, 3}) * 255;
  write_matconvnet(dir / "vgg11.mat", net);
  MatConvNetImport m = load_matconvnet_vgg(dir / "vgg11.mat");
  ASSERT_EQ(m.mean.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    const double expected =
        net.average_image.select(2, c).to(torch::kFloat64).mean().item<double>();
    EXPECT_NEAR(m.mean[c], expected / 255.0, 1e-6) << c;
  }
}

TEST(MatConvNetTest, Beta2014FiltersAndBiasesLayoutLoadsTheSame) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(13, 2, 8, 3);
  net.average_image = torch::rand({4, 4, 3}) * 255;
  write_matconvnet(dir / "current.mat", net, MatLayout::kCurrent);
  write_matconvnet(dir / "beta.mat", net, MatLayout::kBeta2014);
  MatConvNetImport current = load_matconvnet_vgg(dir / "current.mat");
  MatConvNetImport beta = load_matconvnet_vgg(dir / "beta.mat");
  EXPECT_EQ(beta.arch, "vgg13");
  EXPECT_EQ(beta.options, current.options);
  ASSERT_EQ(beta.tensors.size(), current.tensors.size());
  for (const auto& [name, t] : current.tensors) {
    ASSERT_TRUE(beta.tensors.count(name)) << name;
    EXPECT_TRUE(torch::equal(beta.tensors.at(name), t)) << name;
  }
  EXPECT_EQ(beta.mean, current.mean);
  EXPECT_EQ(beta.class_names, net.classes);  // from a blank-padded char matrix
  EXPECT_EQ(beta.input_height, 32);
}

TEST(MatConvNetTest, ReadsV5V7AndV73Files) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  write_matconvnet(dir / "v7.mat", net);
  MatConvNetImport reference = load_matconvnet_vgg(dir / "v7.mat");
  for (const auto& [file, format] : std::vector<std::pair<std::string, MatFormat>>{
           {"v5.mat", MatFormat::kV5}, {"v73.mat", MatFormat::kV73}}) {
    write_matconvnet(dir / file, net, MatLayout::kCurrent, format);
    MatConvNetImport m = load_matconvnet_vgg(dir / file);
    EXPECT_EQ(m.arch, "vgg11") << file;
    ASSERT_EQ(m.tensors.size(), reference.tensors.size()) << file;
    for (const auto& [name, t] : reference.tensors) {
      EXPECT_TRUE(torch::equal(m.tensors.at(name), t)) << file << " " << name;
    }
    EXPECT_EQ(m.mean, reference.mean) << file;
    EXPECT_EQ(m.class_names, net.classes) << file;
  }
}

TEST(MatConvNetTest, MissingFileIsNotFound) {
  testing::TempDir dir;
  Error e = error_of([&] { load_matconvnet_vgg(dir / "nope.mat"); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  EXPECT_NE(std::string(e.what()).find(dir / "nope.mat"), std::string::npos) << e.what();
}

TEST(MatConvNetTest, TextFileRenamedMatIsRejectedNamingIt) {
  testing::TempDir dir;
  std::string html = "<!DOCTYPE html><html><head><title>404 Not Found</title></head>";
  html += "<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p>";
  html += "</body></html>\n";
  testing::write_bytes(dir / "page.mat", html);
  Error e = error_of([&] { load_matconvnet_vgg(dir / "page.mat"); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
  const std::string msg = e.what();
  EXPECT_NE(msg.find(dir / "page.mat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a MATLAB MAT file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("<!DOCTYPE html>"), std::string::npos) << msg;

  testing::write_bytes(dir / "short.mat", "hello\n");
  e = error_of([&] { load_matconvnet_vgg(dir / "short.mat"); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
  EXPECT_NE(std::string(e.what()).find(dir / "short.mat"), std::string::npos) << e.what();
}

TEST(MatConvNetTest, TruncatedFileIsRejectedNamingIt) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  for (MatFormat format : {MatFormat::kV7, MatFormat::kV5}) {
    write_matconvnet(dir / "full.mat", net, MatLayout::kCurrent, format);
    const std::string bytes = testing::read_bytes(dir / "full.mat");
    testing::write_bytes(dir / "half.mat", bytes.substr(0, bytes.size() / 2));
    Error e = error_of([&] { load_matconvnet_vgg(dir / "half.mat"); });
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir / "half.mat"), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
}

TEST(MatConvNetTest, CorruptCompressedDataIsRejectedNamingIt) {
  testing::TempDir dir;
  write_matconvnet(dir / "full.mat", make_fake_vgg(11, 2, 8, 3));
  std::string bytes = testing::read_bytes(dir / "full.mat");
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = '\xab';
  testing::write_bytes(dir / "bad.mat", bytes);
  Error e = error_of([&] { load_matconvnet_vgg(dir / "bad.mat"); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
  const std::string msg = e.what();
  EXPECT_NE(msg.find(dir / "bad.mat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not decompress"), std::string::npos) << msg;
}

TEST(MatConvNetTest, TruncatedV73FileIsRejectedNamingIt) {
  testing::TempDir dir;
  write_matconvnet(dir / "full.mat", make_fake_vgg(11, 2, 8, 3), MatLayout::kCurrent,
                   MatFormat::kV73);
  const std::string bytes = testing::read_bytes(dir / "full.mat");
  testing::write_bytes(dir / "half.mat", bytes.substr(0, bytes.size() / 2));
  Error e = error_of([&] { load_matconvnet_vgg(dir / "half.mat"); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
  const std::string msg = e.what();
  EXPECT_NE(msg.find(dir / "half.mat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(MatConvNetTest, FileWithoutLayersIsRejected) {
  testing::TempDir dir;
  testing::write_mat_row(dir / "other.mat", "weights", {1, 2, 3});
  Error e = error_of([&] { load_matconvnet_vgg(dir / "other.mat"); });
  EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
  const std::string msg = e.what();
  EXPECT_NE(msg.find(dir / "other.mat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no 'layers'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[weights]"), std::string::npos) << msg;
}

TEST(MatConvNetTest, TwelveConvLayersAreNoVgg) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  const size_t last = conv_layer_index(net, 7);
  net.layers.insert(net.layers.begin() + static_cast<long>(last) + 1,
                    fake_conv("conv5_3", 3, 16, 16));
  const std::string msg = corrupt_error(dir, "vgg12.mat", net);
  EXPECT_NE(msg.find("12 conv layers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no VGG"), std::string::npos) << msg;
}

TEST(MatConvNetTest, BatchNormIsRejectedAsUnsupported) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  net.layers.insert(net.layers.begin() + 1, {"bn1_1", "bnorm", torch::ones({2}), {}});
  const std::string msg = corrupt_error(dir, "vgg11_bn.mat", net);
  EXPECT_NE(msg.find("'bn1_1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bnorm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
}

TEST(MatConvNetTest, ConvWhoseInputChannelsDoNotChainIsRejected) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  net.layers[conv_layer_index(net, 3)] = fake_conv("conv3_2", 3, 5, 8);  // conv3_1 gives 8
  const std::string msg = corrupt_error(dir, "vgg11.mat", net);
  EXPECT_NE(msg.find("'conv3_2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("takes 5 input channels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gives 8"), std::string::npos) << msg;
}

TEST(MatConvNetTest, WidthsOutsideThePatternAreRejected) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  net.layers[conv_layer_index(net, 2)] = fake_conv("conv3_1", 3, 4, 6);  // needs 8 = 4w
  net.layers[conv_layer_index(net, 3)] = fake_conv("conv3_2", 3, 6, 8);
  const std::string msg = corrupt_error(dir, "vgg11.mat", net);
  EXPECT_NE(msg.find("('conv3_1') has 6 output channels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs 8"), std::string::npos) << msg;
}

TEST(MatConvNetTest, MissingPoolIsRejected) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  net.layers.erase(std::find_if(net.layers.begin(), net.layers.end(),
                                [](const FakeLayer& l) { return l.name == "pool4"; }));
  const std::string msg = corrupt_error(dir, "vgg11.mat", net);
  EXPECT_NE(msg.find("CMCMCCMCCCCMFFF"), std::string::npos) << msg;
}

TEST(MatConvNetTest, WeightOfWrongRankIsRejected) {
  testing::TempDir dir;
  FakeNet net = make_fake_vgg(11, 2, 8, 3);
  net.layers[conv_layer_index(net, 1)].weight = torch::randn({3, 3, 2, 4, 2});
  const std::string msg = corrupt_error(dir, "vgg11.mat", net);
  EXPECT_NE(msg.find("('conv2_1') has a 5-D weight"), std::string::npos) << msg;
}

}  // namespace gpulab::models
