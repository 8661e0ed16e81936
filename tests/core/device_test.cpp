// Thread resolution: --threads 0 shares the cores among a node's ranks.
#include <gtest/gtest.h>

#include "gpulab/core/device.h"

namespace gpulab::core {
namespace {

TEST(DeviceTest, ExplicitThreadsWin) {
  EXPECT_EQ(resolve_threads(3, 1, 16), 3);
  EXPECT_EQ(resolve_threads(3, 4, 16), 3);
  EXPECT_EQ(resolve_threads(5, 8, 2), 5);
}

TEST(DeviceTest, OneProcessUsesEveryCore) {
  EXPECT_EQ(resolve_threads(0, 1, 16), 16);
  EXPECT_EQ(resolve_threads(0, 0, 16), 16);
  EXPECT_EQ(resolve_threads(0, 1, 0), 1);  // hardware_concurrency() unknown
}

// Regression: every CPU rank took all cores, so two ranks on 2 vCPUs ran 4
// threads and were 2-3x slower.
TEST(DeviceTest, DataParallelRanksShareTheNodesCores) {
  EXPECT_EQ(resolve_threads(0, 2, 2), 1);
  EXPECT_EQ(resolve_threads(0, 2, 16), 8);
  EXPECT_EQ(resolve_threads(0, 3, 16), 5);
  EXPECT_EQ(resolve_threads(0, 4, 2), 1);  // at least one
}

}  // namespace
}  // namespace gpulab::core
