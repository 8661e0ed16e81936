// Progress table layout.
#include "gpulab/train/progress_table.h"

#include <fmt/format.h>

#include <array>

#include "gpulab/core/duration.h"

namespace gpulab::train {
namespace {

constexpr std::array<const char*, 10> kHeaders = {
    "Epoch",      "Iteration",  "Time Elapsed",  "Mini-batch", "Validation",
    "Mini-batch", "Validation", "Base Learning", "Images/s",   "ETA"};
constexpr std::array<const char*, 10> kSubHeaders = {
    "", "", "(hh:mm:ss)", "Accuracy", "Accuracy", "Loss", "Loss", "Rate", "", "(hh:mm:ss)"};
constexpr std::array<int, 10> kWidths = {7, 11, 14, 12, 12, 12, 12, 15, 10, 12};

std::string cells(const std::array<std::string, 10>& values) {
  std::string s = "|";
  for (size_t i = 0; i < values.size(); ++i) {
    s += fmt::format(" {:>{}} |", values[i], kWidths[i] - 2);
  }
  return s + "\n";
}

std::string rule() {
  std::string s = "|";
  for (int w : kWidths) s += std::string(static_cast<size_t>(w), '=') + "|";
  return s + "\n";
}

}  // namespace

std::string ProgressTable::format_header() {
  std::array<std::string, 10> top, sub;
  for (size_t i = 0; i < 10; ++i) {
    top[i] = kHeaders[i];
    sub[i] = kSubHeaders[i];
  }
  return rule() + cells(top) + cells(sub) + rule();
}

std::string ProgressTable::format_row(const ProgressRow& r) {
  auto percent = [](double v) { return fmt::format("{:.2f}%", 100.0 * v); };
  return cells({std::to_string(r.epoch), std::to_string(r.iteration),
                core::format_hms(r.elapsed_seconds), percent(r.minibatch_accuracy),
                r.validation_accuracy ? percent(*r.validation_accuracy) : "",
                fmt::format("{:.4f}", r.minibatch_loss),
                r.validation_loss ? fmt::format("{:.4f}", *r.validation_loss) : "",
                fmt::format("{:.4g}", r.learn_rate), fmt::format("{:.0f}", r.images_per_second),
                core::format_hms(r.eta_seconds)});
}

void ProgressTable::print_header() {
  std::fputs(format_header().c_str(), out_);
  std::fflush(out_);
}

void ProgressTable::print_row(const ProgressRow& row) {
  std::fputs(format_row(row).c_str(), out_);
  std::fflush(out_);
}

void ProgressTable::print_footer() {
  std::fputs(rule().c_str(), out_);
  std::fflush(out_);
}

}  // namespace gpulab::train
