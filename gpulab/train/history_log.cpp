// JSONL history with durable appends.
#include "gpulab/train/history_log.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"

namespace gpulab::train {

void HistoryLog::append(const nlohmann::json& record) {
  core::append_line_durable(path_, record.dump());
  ++lines_;
}

void HistoryLog::truncate_to(int64_t lines) {
  std::string kept;
  if (std::filesystem::exists(path_)) {
    std::ifstream in(path_);
    std::string line;
    for (int64_t i = 0; i < lines && std::getline(in, line); ++i) kept += line + "\n";
  }
  core::write_file_atomic(path_, kept);
  lines_ = lines;
}

}  // namespace gpulab::train
