// Checkpoint positions across mini-batch sizes, and who writes the folder.
#include <gtest/gtest.h>

#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/train/checkpoint.h"
#include "tests/support/test_util.h"

namespace gpulab::train {
namespace {

TrainerState mid_epoch(int64_t batch_in_epoch, int64_t batch_size) {
  TrainerState s;
  s.epoch = 2;
  s.batch_in_epoch = batch_in_epoch;
  s.iteration = 15;
  s.batch_size = batch_size;
  return s;
}

// Regression: a 2-rank run under --scale-with-workers (global batch 64)
// resumed as one process (batch 32) restarted 5 batches into the epoch, at
// image 160 instead of 320, and trained 160 images twice.
TEST(CheckpointTest, MidEpochPositionIsKeptInImagesAcrossBatchSizes) {
  TrainerState s = mid_epoch(5, 64);
  rebase_to_batch_size(s, 32);
  EXPECT_EQ(s.batch_in_epoch, 10);
  EXPECT_EQ(s.batch_size, 32);
  EXPECT_EQ(s.epoch, 2);
  EXPECT_EQ(s.iteration, 15);

  s = mid_epoch(6, 32);
  rebase_to_batch_size(s, 64);
  EXPECT_EQ(s.batch_in_epoch, 3);
}

TEST(CheckpointTest, AResumeThatWouldSkipOrRepeatImagesIsRefused) {
  TrainerState s = mid_epoch(5, 64);
  try {
    rebase_to_batch_size(s, 96);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("320 images into epoch 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("global mini-batch of 64"), std::string::npos) << e.what();
  }
}

TEST(CheckpointTest, EpochBoundariesAndOldCheckpointsNeedNoRebase) {
  TrainerState s = mid_epoch(0, 64);
  rebase_to_batch_size(s, 96);
  EXPECT_EQ(s.batch_in_epoch, 0);
  s = mid_epoch(5, 0);  // written before the batch size was recorded
  rebase_to_batch_size(s, 96);
  EXPECT_EQ(s.batch_in_epoch, 5);
  EXPECT_EQ(TrainerState::from_json(mid_epoch(5, 64).to_json()).batch_size, 64);
}

// Regression: every data-parallel rank created RUN_DIR/checkpoints and wrote
// a probe file in it; only rank 0 may write.
TEST(CheckpointTest, AReaderStoreNeverTouchesTheDisk) {
  testing::TempDir tmp;
  const std::string dir = tmp / "checkpoints";
  CheckpointStore reader(dir, 2, /*writer=*/false);
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_FALSE(reader.has_latest());
  CheckpointStore writer(dir, 2);
  EXPECT_TRUE(std::filesystem::is_directory(dir));
}

}  // namespace
}  // namespace gpulab::train
