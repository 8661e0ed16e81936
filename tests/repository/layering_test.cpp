// The layer table of DESIGN.md, enforced: scripts/check_layers.py passes on
// this tree and fails on a planted upward include.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/test_util.h"

namespace gpulab {
namespace {

std::string check_layers(const std::string& root) {
  return "python3 " + std::string(GPULAB_SOURCE_DIR) + "/scripts/check_layers.py --root '" + root +
         "'";
}

}  // namespace

TEST(LayeringTest, TheSourceTreeFollowsTheLayerTable) {
  const auto r = testing::run_shell(check_layers(GPULAB_SOURCE_DIR));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(LayeringTest, APlantedUpwardIncludeFailsNamingTheFileAndTheRule) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "gpulab/data");
  std::filesystem::create_directories(dir / "gpulab/train");
  testing::write_bytes(dir / "gpulab/data/ok.h", "#include \"gpulab/core/error.h\"\n");
  testing::write_bytes(dir / "gpulab/train/trainer.h", "#include \"gpulab/data/ok.h\"\n");
  EXPECT_EQ(testing::run_shell(check_layers(dir.path())).exit_code, 0);
  testing::write_bytes(dir / "gpulab/data/bad.cpp",
                       "// a data file that reaches up\n#include \"gpulab/train/trainer.h\"\n");
  const auto r = testing::run_shell(check_layers(dir.path()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("gpulab/data/bad.cpp:2: layer 'data' includes 'gpulab/train/trainer.h'"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("may use only: core"), std::string::npos) << r.output;
}

}  // namespace gpulab
