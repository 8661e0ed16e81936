// Confusion matrix and the classification metrics derived from it.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gpulab::tasks {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes);
  // From counts [num_classes * num_classes], row-major [actual][predicted]
  // (e.g. summed on a device and over ranks).
  ConfusionMatrix(int64_t num_classes, std::vector<int64_t> counts);
  // predicted, actual: [N] int64 class indices (any device).
  void add(const at::Tensor& predicted, const at::Tensor& actual);

  int64_t num_classes() const { return num_classes_; }
  int64_t total() const;
  // counts[actual][predicted].
  int64_t count(int64_t actual, int64_t predicted) const;
  double accuracy() const;
  // Of the images predicted as c, the share that are c (0 when none predicted).
  double precision(int64_t c) const;
  // Of the images of class c, the share predicted as c (0 when none present).
  double recall(int64_t c) const;

  // {"accuracy", "per_class": [{label, precision, recall, support}], "confusion"}.
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
  // Per-class table and the confusion matrix as text.
  std::string format(const std::vector<std::string>& class_names) const;

 private:
  int64_t num_classes_;
  std::vector<int64_t> counts_;  // row-major [actual][predicted]
};

}  // namespace gpulab::tasks
