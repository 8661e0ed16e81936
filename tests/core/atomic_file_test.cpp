// Atomic writes and writable-folder checks.
#include <gtest/gtest.h>

#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "tests/support/test_util.h"

namespace gpulab::core {
namespace fs = std::filesystem;

TEST(AtomicFileTest, ReplacesContentAndLeavesNoTemporaryFile) {
  testing::TempDir dir;
  write_file_atomic(dir / "a.txt", "first");
  write_file_atomic(dir / "a.txt", "second");
  EXPECT_EQ(read_file(dir / "a.txt"), "second");
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(AtomicFileTest, ReadingAMissingFileNamesIt) {
  try {
    read_file("/nonexistent/file.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/file.bin"), std::string::npos);
  }
}

TEST(AtomicFileTest, RejectsAnOutputFolderBelowARegularFile) {
  testing::TempDir dir;
  testing::write_bytes(dir / "file", "x");
  EXPECT_THROW(ensure_writable_dir(dir / "file/run"), Error);
  EXPECT_NO_THROW(ensure_writable_dir(dir / "a/b/c"));
  EXPECT_TRUE(fs::is_directory(dir / "a/b/c"));
}

TEST(AtomicFileTest, AppendsLines) {
  testing::TempDir dir;
  append_line_durable(dir / "h.jsonl", "{\"a\":1}");
  append_line_durable(dir / "h.jsonl", "{\"a\":2}");
  EXPECT_EQ(read_file(dir / "h.jsonl"), "{\"a\":1}\n{\"a\":2}\n");
}

}  // namespace gpulab::core
