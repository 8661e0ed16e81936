// Where a run's progress goes: the progress table on stdout and
// RUN_DIR/history.jsonl. Only rank 0 of a data-parallel job has reporters;
// the server and the web page plot runs from history.jsonl, so it is
// flushed row by row.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gpulab/train/fit_result.h"
#include "gpulab/train/history_log.h"
#include "gpulab/train/progress_table.h"

namespace gpulab::train {

// One logged iteration.
struct LogRow : ProgressRow {
  double data_wait_share = 0;
  double peak_host_memory_mb = 0;
  std::optional<double> peak_device_memory_mb;
};

// Called from the training thread only.
class Reporter {
 public:
  virtual ~Reporter() = default;
  // Before the first step: lines describing the run (devices, data, transfer).
  virtual void start(const std::vector<std::string>& description) {}
  virtual void row(const LogRow& row) = 0;
  // Once, after the last step (before the final model is written).
  virtual void finish(const FitResult& result) {}
};

// The table on `out`: the description, then a header, rows and a footer.
class ProgressTableReporter : public Reporter {
 public:
  explicit ProgressTableReporter(std::vector<tasks::ProgressColumn> columns,
                                 std::FILE* out = stdout);
  void start(const std::vector<std::string>& description) override;
  void row(const LogRow& row) override;
  void finish(const FitResult& result) override;

 private:
  ProgressTable table_;
  std::FILE* out_;
};

// One JSON object per row appended to `log`: epoch, iteration, time, the
// mini-batch values by name (loss, accuracy, loss parts...), learn_rate,
// images_per_second, data_wait_share, peak memory, and validation_<name>
// when validation ran at that row.
class HistoryReporter : public Reporter {
 public:
  explicit HistoryReporter(HistoryLog& log) : log_(log) {}
  void row(const LogRow& row) override;
  static nlohmann::json record(const LogRow& row);

 private:
  HistoryLog& log_;
};

}  // namespace gpulab::train
