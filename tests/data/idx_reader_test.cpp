// IDX parsing and its rejection of malformed files.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/idx_reader.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {

std::string expect_corrupt(const std::string& path, int rank) {
  try {
    read_idx_file(path, rank);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return "";
}

}  // namespace

TEST(IdxReaderTest, ReadsRawAndGzipFilesIdentically) {
  testing::TempDir dir;
  std::vector<uint8_t> values(2 * 3 * 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i * 7);
  std::string bytes = testing::idx_bytes({2, 3, 4}, values);
  testing::write_bytes(dir / "raw", bytes);
  testing::write_bytes(dir / "packed.gz", testing::gzip_bytes(bytes));
  auto raw = read_idx_file(dir / "raw", 3);
  auto packed = read_idx_file(dir / "packed.gz", 3);
  ASSERT_EQ(raw.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_TRUE(torch::equal(raw, packed));
  EXPECT_EQ(raw[1][2][3].item<uint8_t>(), static_cast<uint8_t>(23 * 7));
}

TEST(IdxReaderTest, RejectsWrongMagicWithAHint) {
  testing::TempDir dir;
  testing::write_bytes(dir / "labels", testing::idx_bytes({3}, {1, 2, 3}));
  std::string msg = expect_corrupt(dir / "labels", 3);
  EXPECT_NE(msg.find("expected magic 2051"), std::string::npos) << msg;
  EXPECT_NE(msg.find("labels file"), std::string::npos) << msg;
}

TEST(IdxReaderTest, RejectsATruncatedFile) {
  testing::TempDir dir;
  std::string bytes = testing::idx_bytes({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  testing::write_bytes(dir / "short", bytes.substr(0, bytes.size() - 3));
  EXPECT_NE(expect_corrupt(dir / "short", 3).find("truncated"), std::string::npos);
}

TEST(IdxReaderTest, RejectsACorruptGzipStream) {
  testing::TempDir dir;
  std::string gz = testing::gzip_bytes(testing::idx_bytes({4}, {1, 2, 3, 4}));
  testing::write_bytes(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_NE(expect_corrupt(dir / "cut.gz", 1).find("gzip"), std::string::npos);
  std::string flipped = gz;
  flipped[gz.size() / 2] ^= 0x5a;
  flipped[gz.size() / 2 + 1] ^= 0x33;
  testing::write_bytes(dir / "flipped.gz", flipped);
  expect_corrupt(dir / "flipped.gz", 1);
}

TEST(IdxReaderTest, RejectsAFileTooShortForAHeader) {
  testing::TempDir dir;
  testing::write_bytes(dir / "tiny", std::string("\0\0", 2));
  expect_corrupt(dir / "tiny", 1);
}

TEST(IdxReaderTest, MissingFileIsNotFound) {
  try {
    read_idx_file("/nonexistent/train-images-idx3-ubyte", 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
}

}  // namespace gpulab::data
