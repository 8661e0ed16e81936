// Progress table layout.
#include <gtest/gtest.h>

#include "gpulab/train/progress_table.h"

namespace gpulab::train {

TEST(ProgressTableTest, HeaderHasMatlabColumnsPlusThroughputAndEta) {
  const std::string h = ProgressTable::format_header();
  for (const char* col : {"Epoch", "Iteration", "Time Elapsed", "(hh:mm:ss)", "Mini-batch",
                          "Validation", "Accuracy", "Loss", "Base Learning", "Images/s", "ETA"}) {
    EXPECT_NE(h.find(col), std::string::npos) << col;
  }
}

TEST(ProgressTableTest, RowFormatsPercentagesTimesAndBlankValidation) {
  ProgressRow r;
  r.epoch = 2;
  r.iteration = 150;
  r.elapsed_seconds = 3725;
  r.minibatch_accuracy = 0.875;
  r.minibatch_loss = 0.31234;
  r.learn_rate = 0.01;
  r.images_per_second = 5123.4;
  const std::string row = ProgressTable::format_row(r);
  EXPECT_NE(row.find("01:02:05"), std::string::npos) << row;
  EXPECT_NE(row.find("87.50%"), std::string::npos) << row;
  EXPECT_NE(row.find("0.3123"), std::string::npos) << row;
  EXPECT_NE(row.find("5123"), std::string::npos) << row;
  EXPECT_EQ(row.size(), ProgressTable::format_header().find('\n') + 1);
}

}  // namespace gpulab::train
