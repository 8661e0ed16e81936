// Segmentation loss, class weights, metrics and options.
#include "gpulab/tasks/segmentation.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/tasks/class_weights.h"
#include "gpulab/tasks/labelled_model_config.h"
#include "gpulab/tasks/segmentation_metrics.h"

namespace gpulab::tasks {
namespace {

constexpr int64_t kIgnore = 255;

std::string option_text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

SegmentationOptions SegmentationOptions::from_json(const nlohmann::json& j) {
  SegmentationOptions o;
  if (j.is_null()) return o;
  GPULAB_CHECK(j.is_object(), ErrorKind::kInvalidArgument,
               "segment: task options must be KEY=VALUE pairs, got {}", j.dump());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = it.key();
    const std::string value = option_text(it.value());
    if (key == "class_weights") {
      o.class_weights = value;
    } else if (key == "unknown_colors") {
      const std::string v = core::to_lower(value);
      GPULAB_CHECK(v == "ignore" || v == "error", ErrorKind::kInvalidArgument,
                   "segment: task option `unknown_colors` is ignore or error, got '{}'", value);
      o.unknown_colors_are_errors = v == "error";
    } else if (key == "class_table") {
      o.class_table = value;
    } else if (key == "bf_tolerance") {
      try {
        o.bf_tolerance = std::stod(value);
      } catch (const std::exception&) {
        o.bf_tolerance = -1;
      }
      GPULAB_CHECK(o.bf_tolerance > 0 && o.bf_tolerance < 1, ErrorKind::kInvalidArgument,
                   "segment: task option `bf_tolerance` is a fraction of the image diagonal in "
                   "(0, 1), e.g. 0.0075; got '{}'",
                   value);
    } else {
      GPULAB_FAIL(ErrorKind::kInvalidArgument,
                  "segment: unknown task option `{}`; valid: class_weights, unknown_colors, "
                  "class_table, bf_tolerance",
                  key);
    }
  }
  return o;
}

nlohmann::json SegmentationOptions::to_json() const {
  return {{"class_weights", class_weights},
          {"unknown_colors", unknown_colors_are_errors ? "error" : "ignore"},
          {"class_table", class_table},
          {"bf_tolerance", bf_tolerance}};
}

SegmentationTask::SegmentationTask(std::string arch, nlohmann::json model_options,
                                   SegmentationOptions options)
    : arch_(std::move(arch)),
      model_options_(std::move(model_options)),
      options_(std::move(options)) {}

models::ModelConfig SegmentationTask::model_config(const DataShape& data) const {
  return labelled_model_config(arch_, model_options_, data);
}

void SegmentationTask::setup(const TaskSetup& setup) {
  labels_ = setup.data.labels;
  const nlohmann::json& recorded = setup.recorded_metadata;
  if (recorded.is_object() && recorded.contains("class_weights")) {
    weights_ = recorded["class_weights"].get<std::vector<double>>();  // a trained model's
  } else {
    weights_ =
        tasks::class_weights(options_.class_weights, setup.data.label_counts, labels_.size());
  }
  weight_tensor_ = weights_.empty()
                       ? at::Tensor()
                       : torch::tensor(weights_, torch::kFloat64).to(setup.device, torch::kFloat32);
}

LossTerms SegmentationTask::loss(const at::Tensor& logits, const data::Batch& batch) const {
  namespace F = torch::nn::functional;
  // ERFNet's encoder-only output is 1/8 of the labels' size.
  const at::Tensor target = labels_at_output_size(batch.target, logits).to(torch::kInt64);
  auto options = F::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(torch::kSum);
  if (weight_tensor_.defined()) options.weight(weight_tensor_);
  const at::Tensor sum = F::cross_entropy(logits, target, options);
  // The weighted mean's denominator without a host sync; clamped so a batch
  // with no labelled pixel gives 0, not NaN.
  const at::Tensor labelled = target.ne(kIgnore);
  at::Tensor denominator;
  if (weight_tensor_.defined()) {
    const at::Tensor ids = torch::where(labelled, target, torch::zeros_like(target));
    denominator = (weight_tensor_.index({ids}) * labelled.to(torch::kFloat32)).sum();
  } else {
    denominator = labelled.sum().to(torch::kFloat32);
  }
  return {sum / denominator.clamp_min(1e-12), {}};
}

std::unique_ptr<Metrics> SegmentationTask::metrics(Stage stage, c10::Device device) const {
  return std::make_unique<SegmentationMetrics>(
      labels_, stage, device, SegmentationMetricsOptions().bf_tolerance(options_.bf_tolerance));
}

std::vector<ProgressColumn> SegmentationTask::progress_columns() const {
  // MATLAB's trainNetwork columns for a pixel classification layer, plus mean IoU.
  return {{"Mini-batch", "Accuracy", Stage::kTraining, "global_accuracy", true},
          {"Validation", "Accuracy", Stage::kValidation, "global_accuracy", true},
          {"Validation", "Mean IoU", Stage::kValidation, "mean_iou", true},
          {"Mini-batch", "Loss", Stage::kTraining, "loss", false},
          {"Validation", "Loss", Stage::kValidation, "loss", false}};
}

nlohmann::json SegmentationTask::metadata() const {
  return {{"class_weights", weights_}, {"options", options_.to_json()}};
}

}  // namespace gpulab::tasks
