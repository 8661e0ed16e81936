// gpulab::Error categories and exit codes.
#include <gtest/gtest.h>

#include "gpulab/core/error.h"

namespace gpulab {

TEST(ErrorTest, BadInputExitsWithTwoAndRuntimeFailureWithOne) {
  EXPECT_EQ(Error(ErrorKind::kInvalidArgument, "x").exit_code(), 2);
  EXPECT_EQ(Error(ErrorKind::kCorruptData, "x").exit_code(), 2);
  EXPECT_EQ(Error(ErrorKind::kNotFound, "x").exit_code(), 2);
  EXPECT_EQ(Error(ErrorKind::kRuntime, "x").exit_code(), 1);
  EXPECT_EQ(Error(ErrorKind::kIo, "x").exit_code(), 1);
}

TEST(ErrorTest, CheckMacroFormatsTheMessage) {
  try {
    GPULAB_CHECK(1 == 2, ErrorKind::kCorruptData, "expected {} found {}", 1, 2);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "expected 1 found 2");
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
  }
}

}  // namespace gpulab
