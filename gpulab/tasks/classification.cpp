// Classification loss and metrics.
#include "gpulab/tasks/classification.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gpulab/tasks/confusion.h"
#include "gpulab/tasks/labelled_model_config.h"

namespace gpulab::tasks {
namespace {

constexpr int64_t kCorrect = kLossSums;        // index of the correct count
constexpr int64_t kConfusion = kLossSums + 1;  // first confusion count

}  // namespace

ClassificationTask::ClassificationTask(std::string arch, nlohmann::json model_options)
    : arch_(std::move(arch)), model_options_(std::move(model_options)) {}

models::ModelConfig ClassificationTask::model_config(const DataShape& data) const {
  return labelled_model_config(arch_, model_options_, data);
}

LossTerms ClassificationTask::loss(const at::Tensor& logits, const data::Batch& batch) const {
  return {torch::nn::functional::cross_entropy(logits, batch.target), {}};
}

std::unique_ptr<Metrics> ClassificationTask::metrics(Stage stage, c10::Device device) const {
  return std::make_unique<ClassificationMetrics>(labels_, stage == Stage::kEvaluation, device);
}

std::vector<ProgressColumn> ClassificationTask::progress_columns() const {
  // MATLAB's trainNetwork columns.
  return {{"Mini-batch", "Accuracy", Stage::kTraining, "accuracy", true},
          {"Validation", "Accuracy", Stage::kValidation, "accuracy", true},
          {"Mini-batch", "Loss", Stage::kTraining, "loss", false},
          {"Validation", "Loss", Stage::kValidation, "loss", false}};
}

ClassificationMetrics::ClassificationMetrics(data::LabelSpec labels, bool confusion,
                                             c10::Device device)
    : labels_(std::move(labels)), confusion_(confusion) {
  const int64_t classes = confusion_ ? labels_.size() : 0;
  sums_ = torch::zeros({kConfusion + classes * classes},
                       torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

void ClassificationMetrics::update(const at::Tensor& logits, const data::Batch& batch,
                                   const LossTerms& loss) {
  const int64_t n = batch.size();
  if (n == 0) return;
  add_loss_sums(sums_, loss, n);
  const at::Tensor predicted = logits.detach().argmax(1);
  sums_.narrow(0, kCorrect, 1).add_(predicted.eq(batch.target).sum().to(torch::kFloat64));
  if (confusion_) {
    const int64_t classes = labels_.size();
    const at::Tensor cells = batch.target * classes + predicted;
    sums_.narrow(0, kConfusion, classes * classes)
        .add_(torch::bincount(cells.flatten(), {}, classes * classes)
                  .narrow(0, 0, classes * classes)
                  .to(torch::kFloat64));
  }
}

void ClassificationMetrics::reset() {
  sums_.zero_();
}

MetricValues ClassificationMetrics::values() const {
  const at::Tensor s = sums_.narrow(0, 0, kConfusion).cpu();
  const double* v = s.data_ptr<double>();
  return {{"loss", mean_loss(s)},
          {"accuracy", v[1] > 0 ? v[kCorrect] / v[1] : std::numeric_limits<double>::quiet_NaN()}};
}

nlohmann::json ClassificationMetrics::report() const {
  nlohmann::json out = Metrics::report();
  if (!confusion_) return out;
  const int64_t classes = labels_.size();
  const at::Tensor counts =
      sums_.narrow(0, kConfusion, classes * classes).cpu().to(torch::kInt64).contiguous();
  const ConfusionMatrix matrix(classes,
                               std::vector<int64_t>(counts.data_ptr<int64_t>(),
                                                    counts.data_ptr<int64_t>() + counts.numel()));
  nlohmann::json j = matrix.to_json(labels_.names);
  j["metrics"] = out["metrics"];
  return j;
}

std::string ClassificationMetrics::format_report() const {
  if (!confusion_) return Metrics::format_report();
  const nlohmann::json j = report();
  const int64_t classes = labels_.size();
  std::vector<int64_t> counts;
  for (const auto& row : j["confusion"]) {
    for (const auto& v : row) counts.push_back(v.get<int64_t>());
  }
  return ConfusionMatrix(classes, counts).format(labels_.names);
}

}  // namespace gpulab::tasks
