// Confusion-matrix accumulation (one bincount per batch) and reports.
#include "gpulab/tasks/confusion.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/text_table.h"

namespace gpulab::tasks {

ConfusionMatrix::ConfusionMatrix(int64_t num_classes)
    : num_classes_(num_classes), counts_(static_cast<size_t>(num_classes * num_classes), 0) {}

ConfusionMatrix::ConfusionMatrix(int64_t num_classes, std::vector<int64_t> counts)
    : num_classes_(num_classes), counts_(std::move(counts)) {
  GPULAB_CHECK(static_cast<int64_t>(counts_.size()) == num_classes * num_classes,
               ErrorKind::kInternal, "{} counts for a {}-class confusion matrix", counts_.size(),
               num_classes);
}

void ConfusionMatrix::add(const at::Tensor& predicted, const at::Tensor& actual) {
  auto flat = (actual.to(torch::kInt64) * num_classes_ + predicted.to(torch::kInt64)).flatten();
  auto counts = torch::bincount(flat, {}, num_classes_ * num_classes_).cpu();
  GPULAB_CHECK(counts.numel() == num_classes_ * num_classes_, ErrorKind::kInvalidArgument,
               "labels out of range for {} classes", num_classes_);
  const int64_t* c = counts.data_ptr<int64_t>();
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += c[i];
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (auto v : counts_) t += v;
  return t;
}

int64_t ConfusionMatrix::count(int64_t actual, int64_t predicted) const {
  return counts_[static_cast<size_t>(actual * num_classes_ + predicted)];
}

double ConfusionMatrix::accuracy() const {
  int64_t correct = 0;
  for (int64_t c = 0; c < num_classes_; ++c) correct += count(c, c);
  return total() ? static_cast<double>(correct) / static_cast<double>(total()) : 0.0;
}

double ConfusionMatrix::precision(int64_t c) const {
  int64_t predicted = 0;
  for (int64_t a = 0; a < num_classes_; ++a) predicted += count(a, c);
  return predicted ? static_cast<double>(count(c, c)) / static_cast<double>(predicted) : 0.0;
}

double ConfusionMatrix::recall(int64_t c) const {
  int64_t actual = 0;
  for (int64_t p = 0; p < num_classes_; ++p) actual += count(c, p);
  return actual ? static_cast<double>(count(c, c)) / static_cast<double>(actual) : 0.0;
}

nlohmann::json ConfusionMatrix::to_json(const std::vector<std::string>& names) const {
  nlohmann::json per_class = nlohmann::json::array();
  nlohmann::json matrix = nlohmann::json::array();
  for (int64_t c = 0; c < num_classes_; ++c) {
    int64_t support = 0;
    nlohmann::json row = nlohmann::json::array();
    for (int64_t p = 0; p < num_classes_; ++p) {
      support += count(c, p);
      row.push_back(count(c, p));
    }
    matrix.push_back(row);
    per_class.push_back({{"label", names.at(static_cast<size_t>(c))},
                         {"precision", precision(c)},
                         {"recall", recall(c)},
                         {"support", support}});
  }
  return {{"accuracy", accuracy()},
          {"total", total()},
          {"per_class", per_class},
          {"confusion", matrix},
          {"confusion_axes", "rows: true class, columns: predicted class"}};
}

std::string ConfusionMatrix::format(const std::vector<std::string>& names) const {
  core::TextTable per_class({"Class", "Precision", "Recall", "Support"});
  for (int64_t c = 0; c < num_classes_; ++c) {
    int64_t support = 0;
    for (int64_t p = 0; p < num_classes_; ++p) support += count(c, p);
    per_class.add_row({names.at(static_cast<size_t>(c)), fmt::format("{:.2f}%", 100 * precision(c)),
                       fmt::format("{:.2f}%", 100 * recall(c)), std::to_string(support)});
  }
  std::vector<std::string> header = {"true \\ predicted"};
  for (int64_t c = 0; c < num_classes_; ++c) header.push_back(std::to_string(c));
  core::TextTable matrix(header);
  for (int64_t a = 0; a < num_classes_; ++a) {
    std::vector<std::string> row = {fmt::format("{} {}", a, names.at(static_cast<size_t>(a)))};
    for (int64_t p = 0; p < num_classes_; ++p) row.push_back(std::to_string(count(a, p)));
    matrix.add_row(row);
  }
  return per_class.render() + "\nConfusion matrix (rows: true class, columns: predicted)\n" +
         matrix.render();
}

}  // namespace gpulab::tasks
