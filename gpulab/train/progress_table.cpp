// Progress table layout.
#include "gpulab/train/progress_table.h"

#include <fmt/format.h>

#include <cmath>

#include "gpulab/core/duration.h"

namespace gpulab::train {
namespace {

constexpr int kMetricWidth = 12;

std::string format_value(const std::optional<double>& v, bool percent) {
  if (!v) return "";
  if (!std::isfinite(*v)) return "NaN";
  if (percent) return fmt::format("{:.2f}%", 100.0 * *v);
  // Style transfer's weighted losses run to 1e5 and more: keep the column's width.
  return std::abs(*v) < 1e5 ? fmt::format("{:.4f}", *v) : fmt::format("{:.4e}", *v);
}

}  // namespace

ProgressTable::ProgressTable(std::vector<tasks::ProgressColumn> columns, std::FILE* out)
    : columns_(std::move(columns)), out_(out) {
  widths_ = {7, 11, 14};
  for (size_t i = 0; i < columns_.size(); ++i) {
    const auto& c = columns_[i];
    widths_.push_back(std::max<int>(
        kMetricWidth, static_cast<int>(std::max(c.header.size(), c.subheader.size())) + 2));
  }
  for (int w : {15, 10, 12}) widths_.push_back(w);
}

std::string ProgressTable::cells(const std::vector<std::string>& values) const {
  std::string s = "|";
  for (size_t i = 0; i < values.size(); ++i) {
    s += fmt::format(" {:>{}} |", values[i], widths_[i] - 2);
  }
  return s + "\n";
}

std::string ProgressTable::rule() const {
  std::string s = "|";
  for (int w : widths_) s += std::string(static_cast<size_t>(w), '=') + "|";
  return s + "\n";
}

std::string ProgressTable::format_header() const {
  std::vector<std::string> top = {"Epoch", "Iteration", "Time Elapsed"};
  std::vector<std::string> sub = {"", "", "(hh:mm:ss)"};
  for (const auto& c : columns_) {
    top.push_back(c.header);
    sub.push_back(c.subheader);
  }
  for (const char* h : {"Base Learning", "Images/s", "ETA"}) top.push_back(h);
  for (const char* h : {"Rate", "", "(hh:mm:ss)"}) sub.push_back(h);
  return rule() + cells(top) + cells(sub) + rule();
}

std::string ProgressTable::format_row(const ProgressRow& r) const {
  std::vector<std::string> values = {std::to_string(r.epoch), std::to_string(r.iteration),
                                     core::format_hms(r.elapsed_seconds)};
  for (const auto& c : columns_) {
    std::optional<double> v;
    if (c.stage == tasks::Stage::kValidation) {
      if (r.validation) v = tasks::find_metric(*r.validation, c.metric);
    } else {
      v = tasks::find_metric(r.minibatch, c.metric);
    }
    values.push_back(format_value(v, c.percent));
  }
  values.push_back(fmt::format("{:.4g}", r.learn_rate));
  values.push_back(fmt::format("{:.0f}", r.images_per_second));
  values.push_back(core::format_hms(r.eta_seconds));
  return cells(values);
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
