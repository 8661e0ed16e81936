// The table and history reporters.
#include "gpulab/train/reporter.h"

#include <cmath>

namespace gpulab::train {
namespace {

nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

}  // namespace

ProgressTableReporter::ProgressTableReporter(std::vector<tasks::ProgressColumn> columns,
                                             std::FILE* out)
    : table_(std::move(columns), out), out_(out) {}

void ProgressTableReporter::start(const std::vector<std::string>& description) {
  for (const auto& line : description) std::fprintf(out_, "%s\n", line.c_str());
  table_.print_header();
}

void ProgressTableReporter::row(const LogRow& row) {
  table_.print_row(row);
}

void ProgressTableReporter::finish(const FitResult& result) {
  table_.print_footer();
  if (result.cuda_graphs.rfind("capture failed", 0) == 0) {
    std::fprintf(out_, "Warning: the CUDA graph %s\n", result.cuda_graphs.c_str());
  }
}

nlohmann::json HistoryReporter::record(const LogRow& row) {
  nlohmann::json j = {
      {"epoch", row.epoch}, {"iteration", row.iteration}, {"time", row.elapsed_seconds}};
  for (const auto& [name, value] : row.minibatch) j[name] = number(value);
  j["learn_rate"] = row.learn_rate;
  j["images_per_second"] = row.images_per_second;
  j["data_wait_share"] = row.data_wait_share;
  j["peak_host_memory_mb"] = row.peak_host_memory_mb;
  if (row.peak_device_memory_mb) j["peak_device_memory_mb"] = *row.peak_device_memory_mb;
  if (row.validation) {
    for (const auto& [name, value] : *row.validation) j["validation_" + name] = number(value);
  }
  return j;
}

void HistoryReporter::row(const LogRow& row) {
  log_.append(record(row));
}

}  // namespace gpulab::train
