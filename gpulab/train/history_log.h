// RUN_DIR/history.jsonl: one JSON object per logged iteration, appended and
// flushed as training goes; truncated back to a checkpoint on resume.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace gpulab::train {

class HistoryLog {
 public:
  explicit HistoryLog(std::string path) : path_(std::move(path)) {}
  void append(const nlohmann::json& record);
  // Lines written so far (for checkpoints).
  int64_t lines() const { return lines_; }
  // Keeps the first `lines` lines (atomically) and continues after them.
  void truncate_to(int64_t lines);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int64_t lines_ = 0;
};

}  // namespace gpulab::train
