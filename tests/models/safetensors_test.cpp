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

// A safetensors file with this JSON header and `data_bytes` zero data bytes.
std::string file_with_header(std::string header, size_t data_bytes) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size() & 0xff);
  bytes[1] = static_cast<char>(header.size() >> 8);
  return bytes + header + std::string(data_bytes, '\0');
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

// Regression: "abc" or [1,2] as __metadata__ escaped as a raw JSON error (exit 1).
TEST(SafetensorsTest, MetadataThatIsNotAnObjectOfStringsIsRejectedNamingTheFile) {
  const std::string tensor = R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  for (const std::string& meta : {R"("abc")", "[1,2]", R"({"a":1})", R"({"a":{"b":"c"}})"}) {
    Error error(ErrorKind::kInternal, "none");
    try {
      decode_safetensors(file_with_header("{" + tensor + R"(,"__metadata__":)" + meta + "}", 4),
                         "meta.st");
      ADD_FAILURE() << meta << " was accepted";
      continue;
    } catch (const Error& e) {
      error = e;
    }
    EXPECT_EQ(error.kind(), ErrorKind::kCorruptData) << meta;
    EXPECT_NE(std::string(error.what())
                  .find("'meta.st': safetensors __metadata__ must be an "
                        "object of strings"),
              std::string::npos)
        << error.what();
  }
  const auto ok = decode_safetensors(
      file_with_header("{" + tensor + R"(,"__metadata__":{"format":"pt"}})", 4), "ok.st");
  EXPECT_EQ(ok.metadata.at("format"), "pt");
}

// Regression: overlapping ranges, gaps and trailing bytes were accepted; the
// spec (and Python's reader) wants the ranges to tile the data buffer.
TEST(SafetensorsTest, TensorRangesMustTileTheDataWithoutOverlapGapOrTrailingBytes) {
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":)";
  const std::string b = R"("b":{"dtype":"F32","shape":[2],"data_offsets":)";
  std::string msg = error_of([&] {
    decode_safetensors(file_with_header("{" + a + "[0,8]}," + b + "[4,12]}}", 12), "o.st");
  });
  EXPECT_NE(msg.find("'o.st': tensor 'b' starts at data byte 4 but the previous tensor ends at 8"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
  msg = error_of([&] {
    decode_safetensors(file_with_header("{" + a + "[0,8]}," + b + "[12,20]}}", 20), "g.st");
  });
  EXPECT_NE(msg.find("'g.st': tensor 'b' starts at data byte 12"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a gap"), std::string::npos) << msg;
  msg = error_of([&] { decode_safetensors(file_with_header("{" + a + "[0,8]}}", 16), "t.st"); });
  EXPECT_NE(msg.find("'t.st': 8 trailing bytes after the last tensor's data"), std::string::npos)
      << msg;
  // Ranges in any header order, and an empty tensor, are fine.
  const auto ok = decode_safetensors(
      file_with_header("{" + b +
                           R"([8,16]},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)" + a +
                           "[0,8]}}",
                       16),
      "ok.st");
  EXPECT_EQ(ok.tensors.size(), 3u);
}

// Regression: a shape of [1.5] was read as [1].
TEST(SafetensorsTest, ShapeDimensionsMustBeIntegers) {
  for (const std::string& shape : {"[1.5]", "[\"1\"]", "[true]", "4"}) {
    const std::string msg = error_of([&] {
      decode_safetensors(
          file_with_header(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,4]}})",
                           4),
          "s.st");
    });
    EXPECT_NE(msg.find("'s.st': tensor 'w' has shape " + shape), std::string::npos) << msg;
  }
}

// Regression: BOOL and I64 tensors were silently copied into float parameters.
TEST(SafetensorsTest, LoadingRejectsIntegerTensorsForFloatParametersNamingThem) {
  ModelConfig c;
  c.arch = "lenet5";
  auto net = create_model(c);
  auto sd = state_dict(*net);
  sd["fc3.bias"] = torch::ones(sd["fc3.bias"].sizes(), torch::kInt64);
  sd["conv1.bias"] = torch::ones(sd["conv1.bias"].sizes(), torch::kBool);
  const std::string msg = error_of([&] { load_state_dict(*net, sd, "w.safetensors"); });
  EXPECT_NE(msg.find("'w.safetensors'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("wrong dtype [conv1.bias (file Bool, model Float), fc3.bias (file Long, "
                     "model Float)]"),
            std::string::npos)
      << msg;
  // Other float precisions convert.
  sd = state_dict(*net);
  for (auto& [name, t] : sd) t = t.to(torch::kFloat64);
  EXPECT_NO_THROW(load_state_dict(*net, sd, "f64.safetensors"));
}

TEST(SafetensorsTest, LoadingTakesAnIntegerBatchCounterOfAnotherWidth) {
  ModelConfig c;
  c.arch = "resnet18";
  c.num_classes = 3;
  c.in_channels = 3;
  auto net = create_model(c);
  auto sd = state_dict(*net);
  sd["bn1.num_batches_tracked"] = torch::tensor(5, torch::kInt32);
  load_state_dict(*net, sd, "i32.safetensors");
  EXPECT_EQ(state_dict(*net).at("bn1.num_batches_tracked").item<int64_t>(), 5);
}

}  // namespace gpulab::models
