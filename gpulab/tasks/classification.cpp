// Classification loss and accuracy.
#include "gpulab/tasks/classification.h"

#include <torch/torch.h>

namespace gpulab::tasks {

ClassificationTask::ClassificationTask(std::string arch, nlohmann::json model_options)
    : arch_(std::move(arch)), model_options_(std::move(model_options)) {}

models::ModelConfig ClassificationTask::model_config(const data::Dataset& train) const {
  models::ModelConfig c;
  c.arch = arch_;
  c.num_classes = static_cast<int64_t>(train.class_names.size());
  c.in_channels = train.channels();
  c.height = train.height();
  c.width = train.width();
  c.options = model_options_;
  return c;
}

at::Tensor ClassificationTask::loss(const at::Tensor& logits, const at::Tensor& target) const {
  return torch::nn::functional::cross_entropy(logits, target);
}

at::Tensor ClassificationTask::correct(const at::Tensor& logits, const at::Tensor& target) const {
  return logits.argmax(1).eq(target).sum();
}

}  // namespace gpulab::tasks
