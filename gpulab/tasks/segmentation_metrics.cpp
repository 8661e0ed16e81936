// Segmentation metrics from a device confusion matrix, plus per-image scores
// and BF sums on the host at evaluation.
#include "gpulab/tasks/segmentation_metrics.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/parallel_for.h"
#include "gpulab/core/text_table.h"
#include "gpulab/tasks/bf_score.h"

namespace gpulab::tasks {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kConfusion = kLossSums;  // first confusion count

// The metrics of one confusion matrix (counts row-major [true][predicted]).
struct Scores {
  double global_accuracy = kNaN;
  double mean_accuracy = kNaN;
  double mean_iou = kNaN;
  double weighted_iou = kNaN;
  std::vector<double> accuracy;  // per class; NaN without true pixels
  std::vector<double> iou;       // per class; NaN without true or predicted pixels
};

// Mean of the values that are not NaN (MATLAB mean(..., 'omitnan')); NaN if none.
double mean_omitnan(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += v;
    ++n;
  }
  return n > 0 ? sum / static_cast<double>(n) : kNaN;
}

Scores scores_of(const double* counts, int64_t classes) {
  Scores s;
  s.accuracy.assign(static_cast<size_t>(classes), kNaN);
  s.iou.assign(static_cast<size_t>(classes), kNaN);
  std::vector<double> truth(static_cast<size_t>(classes), 0.0);
  std::vector<double> predicted(static_cast<size_t>(classes), 0.0);
  double total = 0;
  double correct = 0;
  for (int64_t t = 0; t < classes; ++t) {
    for (int64_t p = 0; p < classes; ++p) {
      const double n = counts[t * classes + p];
      truth[t] += n;
      predicted[p] += n;
      total += n;
    }
    correct += counts[t * classes + t];
  }
  if (total == 0) return s;
  s.global_accuracy = correct / total;
  double weighted = 0;
  for (int64_t c = 0; c < classes; ++c) {
    const double tp = counts[c * classes + c];
    const double fn = truth[c] - tp;
    const double fp = predicted[c] - tp;
    if (truth[c] > 0) s.accuracy[c] = tp / truth[c];
    if (tp + fp + fn > 0) s.iou[c] = tp / (tp + fp + fn);
    if (truth[c] > 0) weighted += truth[c] / total * s.iou[c];
  }
  s.mean_accuracy = mean_omitnan(s.accuracy);
  s.mean_iou = mean_omitnan(s.iou);
  s.weighted_iou = weighted;
  return s;
}

nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

// MATLAB prints 5 decimals (format short g for values in [0, 1]) and NaN.
std::string cell(double v) {
  return std::isnan(v) ? std::string("NaN") : fmt::format("{:.5f}", v);
}

}  // namespace

at::Tensor labels_at_output_size(const at::Tensor& labels, const at::Tensor& logits) {
  GPULAB_CHECK(labels.dim() == 3 && logits.dim() == 4 && labels.size(0) == logits.size(0),
               ErrorKind::kInvalidArgument,
               "segmentation: expected label maps [B, H, W] for logits [B, C, h, w], found {} "
               "for {}",
               labels.sizes(), logits.sizes());
  const int64_t height = labels.size(1), width = labels.size(2);
  const int64_t h = logits.size(2), w = logits.size(3);
  if (height == h && width == w) return labels;
  const int64_t factor = h > 0 ? height / h : 0;
  GPULAB_CHECK(factor > 1 && height == factor * h && width == factor * w,
               ErrorKind::kInvalidArgument,
               "segmentation: the network's output is {}x{} (WxH) for {}x{} label maps; the "
               "labels can only be matched to an output of the same size or smaller by one "
               "whole factor (ERFNet's encoder-only output is 1/8) -- do the model's options "
               "fit its task?",
               w, h, width, height);
  const auto rows = torch::arange(h, labels.options().dtype(torch::kInt64)) * factor + factor / 2;
  const auto cols = torch::arange(w, labels.options().dtype(torch::kInt64)) * factor + factor / 2;
  return labels.index_select(1, rows).index_select(2, cols);
}

SegmentationMetrics::SegmentationMetrics(data::LabelSpec labels, Stage stage, c10::Device device,
                                         SegmentationMetricsOptions options)
    : labels_(std::move(labels)), stage_(stage), options_(options) {
  // No classes is allowed: the object then only names its values (the
  // trainer checks its objective before the data's classes reach the task).
  const int64_t classes = labels_.size();
  GPULAB_CHECK(options_.bf_tolerance() >= 0, ErrorKind::kInvalidArgument,
               "segmentation metrics: bf_tolerance is a fraction of the image diagonal >= 0, "
               "found {}",
               options_.bf_tolerance());
  bf_ = stage_ == Stage::kEvaluation && options_.per_image();
  GPULAB_CHECK(!bf_ || classes <= 255, ErrorKind::kInvalidArgument,
               "segmentation metrics: per-image scores take uint8 label maps, so at most 255 "
               "classes; found {}",
               classes);
  const int64_t size = kConfusion + classes * classes + (bf_ ? 2 * classes + 2 : 0);
  sums_ = torch::zeros({size}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

void SegmentationMetrics::update(const at::Tensor& logits, const data::Batch& batch,
                                 const LossTerms& loss) {
  const int64_t classes = labels_.size();
  GPULAB_CHECK(logits.dim() == 4 && logits.size(1) == classes, ErrorKind::kInvalidArgument,
               "segmentation metrics: expected logits [B, {}, H, W], found {}", classes,
               logits.sizes());
  GPULAB_CHECK(batch.target.defined(), ErrorKind::kInvalidArgument,
               "segmentation metrics: the batch has no label maps");
  const int64_t images = logits.size(0);
  if (images == 0) return;
  add_loss_sums(sums_, loss, images);

  const at::Tensor predicted = logits.detach().argmax(1);  // [B, H, W] int64
  const at::Tensor target = labels_at_output_size(batch.target, logits).to(torch::kInt64);
  at::Tensor valid = target.ge(0).logical_and_(target.lt(classes));
  if (labels_.ignore_value >= 0) valid.logical_and_(target.ne(labels_.ignore_value));
  if (stage_ == Stage::kEvaluation) {
    // Host sync allowed here: a stray id means the label spec and data disagree.
    const at::Tensor stray = valid.logical_not().logical_and_(target.ne(labels_.ignore_value));
    if (stray.any().item<bool>()) {
      GPULAB_FAIL(ErrorKind::kCorruptData,
                  "segmentation metrics: label id {} in the targets is neither a class id "
                  "[0, {}) nor the ignore value {} — do the data's label ids match the model's "
                  "classes?",
                  target.masked_select(stray).max().item<int64_t>(), classes, labels_.ignore_value);
    }
  }
  // A histogram of C*C + 1 bins: cell (true, predicted), and a last bin that
  // takes the pixels with no label; one per image when per-image scores are
  // kept, else one for the batch. index_add_ has a fixed output size, so
  // unlike bincount it needs no host sync.
  const int64_t bins = classes * classes + 1;
  const int64_t histograms = bf_ ? images : 1;
  at::Tensor index =
      torch::where(valid, target * classes + predicted, torch::full_like(target, bins - 1));
  if (bf_) index.add_(torch::arange(images, target.options()).mul_(bins).view({images, 1, 1}));
  const at::Tensor counts =
      torch::zeros({histograms * bins}, target.options())
          .index_add_(0, index.flatten(),
                      torch::ones({1}, target.options()).expand({index.numel()}))
          .view({histograms, bins})
          .narrow(1, 0, bins - 1);
  sums_.narrow(0, kConfusion, classes * classes).add_(counts.sum(0).to(torch::kFloat64));
  if (bf_) {
    // Pixels with no label become 255 (>= C), which bf_scores_per_class skips.
    add_image_scores(counts, predicted, torch::where(valid, target, torch::full_like(target, 255)));
  }
}

void SegmentationMetrics::add_image_scores(const at::Tensor& per_image_counts,
                                           const at::Tensor& predicted, const at::Tensor& target) {
  const int64_t classes = labels_.size();
  const int64_t images = predicted.size(0);
  const int64_t height = predicted.size(1);
  const int64_t width = predicted.size(2);
  const at::Tensor counts = per_image_counts.to(torch::kCPU, torch::kFloat64).contiguous();
  const at::Tensor predicted_cpu = predicted.to(torch::kCPU, torch::kUInt8).contiguous();
  const at::Tensor target_cpu = target.to(torch::kCPU, torch::kUInt8).contiguous();
  const double tolerance = bf_tolerance_px(height, width, options_.bf_tolerance());
  // BF scores per image, images on parallel threads (each O(C * H * W)).
  std::vector<std::vector<double>> bf(static_cast<size_t>(images));
  core::parallel_for(images, 0, [&](int64_t b) {
    bf[b] = bf_scores_per_class(predicted_cpu.data_ptr<uint8_t>() + b * height * width,
                                target_cpu.data_ptr<uint8_t>() + b * height * width, height, width,
                                classes, tolerance);
  });
  // [BF sum per class, BF count per class, image MeanBF sum, image MeanBF count]
  std::vector<double> bf_sums(static_cast<size_t>(2 * classes + 2), 0.0);
  for (int64_t b = 0; b < images; ++b) {
    const Scores s = scores_of(counts.data_ptr<double>() + b * classes * classes, classes);
    for (int64_t c = 0; c < classes; ++c) {
      if (std::isnan(bf[b][c])) continue;
      bf_sums[c] += bf[b][c];
      bf_sums[classes + c] += 1;
    }
    const double image_bf = mean_omitnan(bf[b]);
    if (!std::isnan(image_bf)) {
      bf_sums[2 * classes] += image_bf;
      bf_sums[2 * classes + 1] += 1;
    }
    images_.push_back({static_cast<int64_t>(images_.size()), s.global_accuracy, s.mean_accuracy,
                       s.mean_iou, s.weighted_iou, image_bf});
  }
  sums_.narrow(0, kConfusion + classes * classes, 2 * classes + 2)
      .add_(torch::tensor(bf_sums, torch::kFloat64).to(sums_.device()));
}

void SegmentationMetrics::reset() {
  sums_.zero_();
  images_.clear();
}

MetricValues SegmentationMetrics::values() const {
  const int64_t classes = labels_.size();
  const at::Tensor s = sums_.cpu();
  const Scores scores = scores_of(s.data_ptr<double>() + kConfusion, classes);
  if (stage_ == Stage::kTraining) {
    return {{"loss", mean_loss(s)},
            {"global_accuracy", scores.global_accuracy},
            {"mean_iou", scores.mean_iou}};
  }
  MetricValues v = {{"loss", mean_loss(s)},
                    {"global_accuracy", scores.global_accuracy},
                    {"mean_accuracy", scores.mean_accuracy},
                    {"mean_iou", scores.mean_iou},
                    {"weighted_iou", scores.weighted_iou}};
  if (bf_) {
    const double* bf = s.data_ptr<double>() + kConfusion + classes * classes;
    const double count = bf[2 * classes + 1];
    v.emplace_back("mean_bf_score", count > 0 ? bf[2 * classes] / count : kNaN);
  }
  return v;
}

nlohmann::json SegmentationMetrics::report() const {
  const int64_t classes = labels_.size();
  const at::Tensor s = sums_.cpu();
  const double* counts = s.data_ptr<double>() + kConfusion;
  const double* bf = counts + classes * classes;  // valid only when bf_
  const Scores scores = scores_of(counts, classes);

  nlohmann::json out = Metrics::report();
  const double dataset_bf =
      bf_ && bf[2 * classes + 1] > 0 ? bf[2 * classes] / bf[2 * classes + 1] : kNaN;
  out["dataset"] = {{"GlobalAccuracy", number(scores.global_accuracy)},
                    {"MeanAccuracy", number(scores.mean_accuracy)},
                    {"MeanIoU", number(scores.mean_iou)},
                    {"WeightedIoU", number(scores.weighted_iou)},
                    {"MeanBFScore", number(dataset_bf)}};
  nlohmann::json per_class = nlohmann::json::array();
  nlohmann::json confusion = nlohmann::json::array();
  nlohmann::json normalized = nlohmann::json::array();
  for (int64_t c = 0; c < classes; ++c) {
    const double class_bf = bf_ && bf[classes + c] > 0 ? bf[c] / bf[classes + c] : kNaN;
    per_class.push_back({{"name", labels_.names[static_cast<size_t>(c)]},
                         {"accuracy", number(scores.accuracy[c])},
                         {"iou", number(scores.iou[c])},
                         {"mean_bf_score", number(class_bf)}});
    double row_total = 0;
    for (int64_t p = 0; p < classes; ++p) row_total += counts[c * classes + p];
    nlohmann::json row = nlohmann::json::array();
    nlohmann::json row_share = nlohmann::json::array();
    for (int64_t p = 0; p < classes; ++p) {
      const double n = counts[c * classes + p];
      row.push_back(static_cast<int64_t>(n));
      row_share.push_back(number(row_total > 0 ? n / row_total : kNaN));
    }
    confusion.push_back(row);
    normalized.push_back(row_share);
  }
  nlohmann::json images = nlohmann::json::array();
  for (const ImageRecord& r : images_) {
    images.push_back({{"index", r.index},
                      {"global_accuracy", number(r.global_accuracy)},
                      {"mean_accuracy", number(r.mean_accuracy)},
                      {"mean_iou", number(r.mean_iou)},
                      {"weighted_iou", number(r.weighted_iou)},
                      {"mean_bf_score", number(r.mean_bf_score)}});
  }
  out["classes"] = per_class;
  out["images"] = images;
  out["confusion"] = confusion;
  out["normalized_confusion"] = normalized;
  out["confusion_axes"] = "rows: true class, columns: predicted class";
  return out;
}

std::string SegmentationMetrics::format_report() const {
  const nlohmann::json j = report();
  auto value = [](const nlohmann::json& v) { return v.is_null() ? kNaN : v.get<double>(); };
  std::vector<std::string> header = {"GlobalAccuracy", "MeanAccuracy", "MeanIoU", "WeightedIoU"};
  if (bf_) header.push_back("MeanBFScore");
  core::TextTable dataset(header);
  std::vector<std::string> row;
  for (const std::string& name : header) row.push_back(cell(value(j["dataset"][name])));
  dataset.add_row(row);

  std::vector<std::string> class_header = {"Class", "Accuracy", "IoU"};
  if (bf_) class_header.push_back("MeanBFScore");
  core::TextTable per_class(class_header);
  for (const auto& c : j["classes"]) {
    std::vector<std::string> cells = {c["name"].get<std::string>(), cell(value(c["accuracy"])),
                                      cell(value(c["iou"]))};
    if (bf_) cells.push_back(cell(value(c["mean_bf_score"])));
    per_class.add_row(cells);
  }
  return "Data set metrics\n" + dataset.render() + "\nClass metrics\n" + per_class.render();
}

}  // namespace gpulab::tasks
