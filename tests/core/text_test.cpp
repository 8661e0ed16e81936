// The small text helpers: one spelling of each idiom across the layers.
#include "gpulab/core/text.h"

#include <gtest/gtest.h>

namespace gpulab::core {
namespace {

TEST(TextTest, ParseIntTakesWholeIntegersOnly) {
  EXPECT_EQ(parse_int("12"), 12);
  EXPECT_EQ(parse_int("-3"), -3);
  EXPECT_EQ(parse_int("+4"), 4);
  EXPECT_EQ(parse_int("0"), 0);
  for (const char* bad : {"", "1x", " 1", "1 ", "1.5", "0x10", "+", "-", "99999999999"}) {
    EXPECT_FALSE(parse_int(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(TextTest, LowerCaseAndSuffix) {
  EXPECT_EQ(to_lower("VTest.AVI"), "vtest.avi");
  EXPECT_TRUE(ends_with("clip.jsonl", ".jsonl"));
  EXPECT_FALSE(ends_with("l", ".jsonl"));
}

}  // namespace
}  // namespace gpulab::core
