// Image classification: cross-entropy over class logits, top-1 accuracy.
#pragma once

#include <string>

#include "gpulab/train/task.h"

namespace gpulab::tasks {

class ClassificationTask : public train::Task {
 public:
  // arch: a registered model name; model_options: family options (e.g. {"nf": 8}).
  ClassificationTask(std::string arch, nlohmann::json model_options = nlohmann::json::object());

  std::string name() const override { return "classify"; }
  // num_classes = class names of `train`, in_channels/height/width its images'.
  models::ModelConfig model_config(const data::Dataset& train) const override;
  at::Tensor loss(const at::Tensor& logits, const at::Tensor& target) const override;
  at::Tensor correct(const at::Tensor& logits, const at::Tensor& target) const override;
  int64_t predictions(const at::Tensor& target) const override { return target.size(0); }

 private:
  std::string arch_;
  nlohmann::json model_options_;
};

}  // namespace gpulab::tasks
