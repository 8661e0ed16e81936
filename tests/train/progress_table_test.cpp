// Progress table layout: MATLAB's columns, the task's metric columns.
#include <gtest/gtest.h>

#include "gpulab/tasks/classification.h"
#include "gpulab/train/progress_table.h"

namespace gpulab::train {
namespace {

ProgressTable classification_table() {
  return ProgressTable(tasks::ClassificationTask("basic_cnn").progress_columns());
}

}  // namespace

TEST(ProgressTableTest, HeaderHasMatlabColumnsPlusThroughputAndEta) {
  const std::string h = classification_table().format_header();
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
  r.minibatch = {{"loss", 0.31234}, {"accuracy", 0.875}};
  r.learn_rate = 0.01;
  r.images_per_second = 5123.4;
  const ProgressTable table = classification_table();
  const std::string row = table.format_row(r);
  EXPECT_NE(row.find("01:02:05"), std::string::npos) << row;
  EXPECT_NE(row.find("87.50%"), std::string::npos) << row;
  EXPECT_NE(row.find("0.3123"), std::string::npos) << row;
  EXPECT_NE(row.find("5123"), std::string::npos) << row;
  EXPECT_EQ(row.size(), table.format_header().find('\n') + 1);
}

TEST(ProgressTableTest, ATasksOwnColumnsAreShownByName) {
  ProgressTable table({{"Mini-batch", "Mean IoU", tasks::Stage::kTraining, "mean_iou", true},
                       {"Validation", "Mean IoU", tasks::Stage::kValidation, "mean_iou", true}});
  ProgressRow r;
  r.minibatch = {{"loss", 1.0}, {"mean_iou", 0.25}};
  r.validation = tasks::MetricValues{{"loss", 1.5}, {"mean_iou", 0.125}};
  const std::string row = table.format_row(r);
  EXPECT_NE(table.format_header().find("Mean IoU"), std::string::npos);
  EXPECT_NE(row.find("25.00%"), std::string::npos) << row;
  EXPECT_NE(row.find("12.50%"), std::string::npos) << row;
}

}  // namespace gpulab::train
