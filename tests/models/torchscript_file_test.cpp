// Loading TorchScript archives: a file cut short or damaged is named as such,
// not as a torch.save pickle.
#include <gtest/gtest.h>

#include <torch/script.h>

#include "gpulab/core/error.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/torchscript_file.h"
#include "gpulab/models/weight_file.h"
#include "tests/support/scripted_module.h"
#include "tests/support/test_util.h"

namespace gpulab::models {
namespace {

using testing::error_of;

}  // namespace

// Regression: a truncated .pt was "not a TorchScript file" with a hint about
// torch.save pickles.
TEST(TorchScriptFileTest, TruncatedArchiveIsReportedAsTruncatedNamingTheFile) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "whole.pt", 1, 3);
  const std::string bytes = testing::read_bytes(dir / "whole.pt");
  ASSERT_NO_THROW(load_torchscript_file(dir / "whole.pt"));
  // Cut in the data, and inside the end-of-archive record.
  for (const size_t keep : {bytes.size() / 2, bytes.size() - 10}) {
    const std::string cut = dir / ("cut" + std::to_string(keep) + ".pt");
    testing::write_bytes(cut, bytes.substr(0, keep));
    for (const std::string& msg : {error_of([&] { read_weight_file(cut); }),
                                   error_of([&] { load_torchscript_file(cut); })}) {
      EXPECT_NE(msg.find("TorchScript file '" + cut + "' is truncated or damaged"),
                std::string::npos)
          << msg;
      EXPECT_EQ(msg.find("torch.save"), std::string::npos) << msg;
    }
  }
}

TEST(TorchScriptFileTest, ArchiveWhoseCentralDirectoryIsGoneIsDamaged) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "whole.pt", 1, 3);
  std::string bytes = testing::read_bytes(dir / "whole.pt");
  const size_t cd = bytes.rfind("PK\x01\x02");
  ASSERT_NE(cd, std::string::npos);
  // Overwrite every central-directory entry's signature.
  for (size_t at = bytes.find("PK\x01\x02"); at != std::string::npos;
       at = bytes.find("PK\x01\x02", at + 4)) {
    bytes[at + 2] = 'X';
  }
  testing::write_bytes(dir / "nocd.pt", bytes);
  EXPECT_NE(zip_damage(dir / "nocd.pt"), "");
  const std::string msg = error_of([&] { read_weight_file(dir / "nocd.pt"); });
  EXPECT_NE(msg.find("'" + (dir / "nocd.pt") + "' is truncated or damaged"), std::string::npos)
      << msg;
}

TEST(TorchScriptFileTest, TorchScriptNetworkOnATruncatedOrMissingArchiveNamesIt) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "whole.pt", 1, 3);
  const std::string bytes = testing::read_bytes(dir / "whole.pt");
  testing::write_bytes(dir / "cut.pt", bytes.substr(0, bytes.size() / 3));
  ModelConfig c;
  c.arch = "torchscript";
  c.num_classes = 3;
  c.options = {{"file", dir / "cut.pt"}};
  std::string msg = error_of([&] { create_model(c); });
  EXPECT_NE(msg.find("'" + (dir / "cut.pt") + "' is truncated or damaged"), std::string::npos)
      << msg;
  c.options = {{"file", dir / "gone.pt"}};
  msg = error_of([&] { create_model(c); });
  EXPECT_NE(msg.find("TorchScript file '" + (dir / "gone.pt") + "' does not exist"),
            std::string::npos)
      << msg;
}

}  // namespace gpulab::models
