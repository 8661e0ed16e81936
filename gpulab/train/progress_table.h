// The live progress table on stdout, with MATLAB's columns plus images/s and
// ETA. Rows are printed as they come, so column widths are fixed.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

namespace gpulab::train {

struct ProgressRow {
  int64_t epoch = 0;
  int64_t iteration = 0;
  double elapsed_seconds = 0;
  double minibatch_accuracy = 0;  // 0..1
  std::optional<double> validation_accuracy;
  double minibatch_loss = 0;
  std::optional<double> validation_loss;
  double learn_rate = 0;
  double images_per_second = 0;
  double eta_seconds = 0;
};

class ProgressTable {
 public:
  explicit ProgressTable(std::FILE* out = stdout) : out_(out) {}
  void print_header();
  void print_row(const ProgressRow& row);
  void print_footer();

  // Formats one row without printing (used by tests).
  static std::string format_row(const ProgressRow& row);
  static std::string format_header();

 private:
  std::FILE* out_;
};

}  // namespace gpulab::train
