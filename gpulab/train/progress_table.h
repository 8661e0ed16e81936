// The live progress table on stdout: MATLAB's columns (Epoch, Iteration,
// Time Elapsed, the task's metric columns, Base Learning Rate) plus images/s
// and ETA. Rows are printed as they come, so column widths are fixed.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gpulab/tasks/task.h"

namespace gpulab::train {

struct ProgressRow {
  int64_t epoch = 0;
  int64_t iteration = 0;
  double elapsed_seconds = 0;
  tasks::MetricValues minibatch;                  // the last global mini-batch's values
  std::optional<tasks::MetricValues> validation;  // when validation ran at this row
  double learn_rate = 0;
  double images_per_second = 0;
  double eta_seconds = 0;
};

class ProgressTable {
 public:
  // columns: the task's metric columns (Task::progress_columns()).
  explicit ProgressTable(std::vector<tasks::ProgressColumn> columns, std::FILE* out = stdout);
  void print_header();
  void print_row(const ProgressRow& row);
  void print_footer();

  // Formats without printing (used by tests).
  std::string format_header() const;
  std::string format_row(const ProgressRow& row) const;

 private:
  std::string cells(const std::vector<std::string>& values) const;
  std::string rule() const;

  std::vector<tasks::ProgressColumn> columns_;
  std::vector<int> widths_;
  std::FILE* out_;
};

}  // namespace gpulab::train
