// safetensors encoding, validation and state-dict loading errors.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SafetensorsTest, RoundTripKeepsTensorsDtypesAndMetadata) {
  testing::TempDir dir;
  SafetensorsContent content;
  content.tensors["a.weight"] = torch::randn({3, 4});
  content.tensors["b.count"] = torch::tensor({7}, torch::kInt64);
  content.tensors["c.half"] = torch::randn({5}).to(torch::kBFloat16);
  content.tensors["d.bytes"] = torch::arange(10, torch::kUInt8);
  content.metadata["format"] = "test";
  save_safetensors(dir / "x.safetensors", content);
  auto loaded = load_safetensors(dir / "x.safetensors");
  ASSERT_EQ(loaded.tensors.size(), 4u);
  for (const auto& [name, t] : content.tensors) {
    EXPECT_EQ(loaded.tensors.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(loaded.tensors.at(name), t)) << name;
  }
  EXPECT_EQ(loaded.metadata.at("format"), "test");
}

TEST(SafetensorsTest, HeaderIsTheDocumentedLayout) {
  SafetensorsContent content;
  content.tensors["x"] = torch::ones({2}, torch::kFloat32);
  std::string bytes = encode_safetensors(content);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);  // little-endian on x86
  EXPECT_EQ(n % 8, 0u);
  std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find("\"dtype\":\"F32\""), std::string::npos) << header;
  EXPECT_NE(header.find("\"data_offsets\":[0,8]"), std::string::npos) << header;
  EXPECT_EQ(bytes.size(), 8 + n + 8);
}

TEST(SafetensorsTest, TruncatedFileIsRejectedNamingIt) {
  SafetensorsContent content;
  content.tensors["x"] = torch::ones({100});
  std::string bytes = encode_safetensors(content);
  std::string msg =
      error_of([&] { decode_safetensors(bytes.substr(0, bytes.size() - 10), "w.safetensors"); });
  EXPECT_NE(msg.find("w.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

// Regression: a negative dimension reached torch::empty, whose error named no file.
TEST(SafetensorsTest, NegativeOrOversizedShapeIsRejectedNamingTheFile) {
  auto file_with_shape = [](const std::string& shape) {
    std::string header = R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,16]}})";
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string bytes(8, '\0');
    bytes[0] = static_cast<char>(header.size());
    return bytes + header + std::string(16, '\0');
  };
  std::string msg = error_of([&] { decode_safetensors(file_with_shape("[-1,-4]"), "neg.st"); });
  EXPECT_NE(msg.find("'neg.st': tensor 'w' has a negative dimension in its shape [-1, -4]"),
            std::string::npos)
      << msg;
  msg = error_of(
      [&] { decode_safetensors(file_with_shape("[1099511627776,1099511627776]"), "huge.st"); });
  EXPECT_NE(msg.find("'huge.st': tensor 'w' has 16 bytes but its shape"), std::string::npos) << msg;
  EXPECT_NE(msg.find("more than the file holds"), std::string::npos) << msg;
  EXPECT_EQ(decode_safetensors(file_with_shape("[2,2]"), "ok.st").tensors.at("w").numel(), 4);
}

TEST(SafetensorsTest, OtherFormatsAreRejected) {
  EXPECT_NE(error_of([] { decode_safetensors("PK\x03\x04 a zip file, not safetensors", "m.pt"); }),
            "");
  EXPECT_NE(error_of([] { decode_safetensors(std::string("\x04\0\0\0\0\0\0\0{{{{", 12), "m"); }),
            "");
}

TEST(SafetensorsTest, LoadingListsMissingUnexpectedAndWrongShapeTensors) {
  ModelConfig c;
  c.arch = "lenet5";
  auto net = create_model(c);
  auto sd = state_dict(*net);
  sd.erase("fc3.bias");
  sd["extra.weight"] = torch::zeros({1});
  sd["conv1.weight"] = torch::zeros({6, 1, 3, 3});
  std::string msg = error_of([&] { load_state_dict(*net, sd, "w.safetensors"); });
  EXPECT_NE(msg.find("missing [fc3.bias]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected [extra.weight]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conv1.weight (file 6x1x3x3, model 6x1x5x5)"), std::string::npos) << msg;
}

}  // namespace gpulab::models
