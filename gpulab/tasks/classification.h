// Image classification: cross-entropy over class logits; loss and top-1
// accuracy, and at evaluation per-class precision and recall and the
// confusion matrix.
#pragma once

#include <string>

#include "gpulab/tasks/task.h"

namespace gpulab::tasks {

class ClassificationTask : public Task {
 public:
  // arch: a registered model name; model_options: family options (e.g. {"nf": 8}).
  ClassificationTask(std::string arch, nlohmann::json model_options = nlohmann::json::object());

  std::string name() const override { return "classify"; }
  TargetKind target_kind() const override { return TargetKind::kClassIndex; }
  // IDX folders or image folders with one sub-folder per class.
  data::TrainingData open_training_data(const data::DataRequest& request) const override;
  // The same kinds, decoded as validation decoded them, targets mapped onto
  // the model's classes by name (a class the model lacks is an error).
  data::Dataset open_evaluation_data(const data::DataPath& path, const data::DataOptions& options,
                                     const models::ModelMetadata& model,
                                     const std::string& index_cache_dir, const core::Log& log,
                                     int64_t* skipped) const override;
  // num_classes = the data's labels, in_channels/height/width its images'.
  models::ModelConfig model_config(const DataShape& data) const override;
  LossTerms loss(const at::Tensor& logits, const data::Batch& batch) const override;
  // Stage kEvaluation adds the confusion matrix to the sums (and the report).
  std::unique_ptr<Metrics> metrics(Stage stage, c10::Device device) const override;
  std::string primary_metric() const override { return "accuracy"; }
  // Validation loss, as MATLAB's ValidationPatience and OutputNetwork
  // "best-validation-loss" (TrainOptions::objective_metric may say accuracy).
  Objective default_objective() const override { return {"loss", false}; }
  std::vector<ProgressColumn> progress_columns() const override;
  models::OutputKind output_kind() const override { return models::OutputKind::kClassScores; }

  // Keeps the data's labels: evaluation reports classes by name.
  void setup(const TaskSetup& setup) override { labels_ = setup.data.labels; }

 private:
  std::string arch_;
  nlohmann::json model_options_;
  data::LabelSpec labels_;
};

// The classification measures: sums [loss * n, n, correct(, confusion C*C)].
class ClassificationMetrics : public Metrics {
 public:
  // confusion: also accumulate the confusion matrix (per-class report).
  ClassificationMetrics(data::LabelSpec labels, bool confusion, c10::Device device);
  void update(const at::Tensor& logits, const data::Batch& batch, const LossTerms& loss) override;
  at::Tensor& sums() override { return sums_; }
  void reset() override;
  // {loss, accuracy}.
  MetricValues values() const override;
  // {"metrics", "accuracy", "total", "per_class", "confusion", ...} with the
  // confusion matrix; the values alone without it.
  nlohmann::json report() const override;
  std::string format_report() const override;

 private:
  data::LabelSpec labels_;
  bool confusion_;
  at::Tensor sums_;  // float64 on the device
};

}  // namespace gpulab::tasks
