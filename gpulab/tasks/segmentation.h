// Semantic segmentation: pixel cross-entropy over per-pixel class logits,
// with the ignore label and optional class weights; MATLAB's
// evaluateSemanticSegmentation metrics (global and mean accuracy, mean and
// weighted IoU, BF score). Data: pixel-label folders (generic, CamVid,
// Cityscapes layouts; pixel_label_layout.h).
#pragma once

#include <string>
#include <vector>

#include "gpulab/tasks/task.h"

namespace gpulab::tasks {

// The task's options (--task-option KEY=VALUE, spec task_options):
//   class_weights: none (default) | median-frequency | enet | FILE
//   unknown_colors: ignore (default) | error   (CamVid colour labels)
//   class_table: FILE                           (classes.txt / classes.json)
//   bf_tolerance: fraction of the image diagonal (default 0.0075)
struct SegmentationOptions {
  std::string class_weights = "none";
  bool unknown_colors_are_errors = false;
  std::string class_table;
  double bf_tolerance = 0.0075;

  // Throws Error(kInvalidArgument) naming an unknown key or a bad value.
  static SegmentationOptions from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

class SegmentationTask : public Task {
 public:
  SegmentationTask(std::string arch, nlohmann::json model_options, SegmentationOptions options);

  std::string name() const override { return "segment"; }
  TargetKind target_kind() const override { return TargetKind::kLabelMap; }
  // Pixel-label folders: the split "train" (splits/train.txt, or every pair;
  // Cityscapes leftImg8bit/train) and for validation --val-data, else the
  // split "val" when the folder has one, else val_split held out by image.
  data::TrainingData open_training_data(const data::DataRequest& request) const override;
  // The split "test" (generic, CamVid; every pair without splits/test.txt)
  // or "val" (Cityscapes), at the model's training size unless image_size is
  // given; its classes must be the model's, by name and order.
  data::Dataset open_evaluation_data(const data::DataPath& path, const data::DataOptions& options,
                                     const models::ModelMetadata& model,
                                     const std::string& index_cache_dir, const core::Log& log,
                                     int64_t* skipped) const override;
  models::ModelConfig model_config(const DataShape& data) const override;
  // Computes the class weights (from the training set's pixel counts, or
  // those the model recorded) and moves them to the device.
  void setup(const TaskSetup& setup) override;
  // Mean over labelled pixels of the (weighted) cross-entropy: with weights,
  // divided by the sum of the weights of the labelled pixels (PyTorch's
  // weighted mean); 0 for a batch with no labelled pixel.
  LossTerms loss(const at::Tensor& logits, const data::Batch& batch) const override;
  std::unique_ptr<Metrics> metrics(Stage stage, c10::Device device) const override;
  std::string primary_metric() const override { return "mean_iou"; }
  Objective default_objective() const override { return {"mean_iou", true}; }
  std::vector<ProgressColumn> progress_columns() const override;
  models::OutputKind output_kind() const override { return models::OutputKind::kLabelMap; }
  bool fixed_input_size(const models::ModelConfig&) const override { return false; }
  // {"class_weights": [...] (empty: none), "options": {...}}.
  nlohmann::json metadata() const override;

  const std::vector<double>& class_weights() const { return weights_; }

 private:
  std::string arch_;
  nlohmann::json model_options_;
  SegmentationOptions options_;
  data::LabelSpec labels_;
  std::vector<double> weights_;  // empty = unweighted
  at::Tensor weight_tensor_;     // weights_ on the device (float32)
};

}  // namespace gpulab::tasks
