// MATLAB's semantic-segmentation metrics (evaluateSemanticSegmentation):
// global accuracy, class accuracy, IoU, weighted IoU and the BF (boundary F1)
// score, per data set, per class and per image. Definitions, ignore and NaN
// rules: docs/segmentation-metrics.md.
#pragma once

#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/data/label_spec.h"
#include "gpulab/tasks/metrics.h"

namespace gpulab::tasks {

// The label maps `labels` [B, H, W] at the resolution of `logits` [B, C, h, w]:
// themselves when h == H and w == W; when the logits are smaller by one whole
// factor f (H = f*h, W = f*w: ERFNet's encoder-only output, f = 8) the pixel
// nearest each output pixel's centre, labels[f*i + f/2][f*j + f/2] -- what
// Eromera/erfnet_pytorch's first stage trains on (the labels resized with
// PIL's NEAREST to 1/8). On the labels' device, no host sync. Throws
// Error(kInvalidArgument) with both sizes for any other pair.
at::Tensor labels_at_output_size(const at::Tensor& labels, const at::Tensor& logits);

struct SegmentationMetricsOptions {
  // BF-score distance tolerance as a fraction of each image's diagonal
  // (MATLAB bfscore's default, 0.75 %: 9 px at 960x720).
  GPULAB_ARG(double, bf_tolerance) = 0.0075;
  // Stage::kEvaluation only: per-image metrics and BF scores (host work per
  // batch; see SegmentationMetrics::update). Ignored at other stages.
  GPULAB_ARG(bool, per_image) = true;
};

// Sums (float64 on the device, all-reduced by data-parallel ranks):
//   [loss * n, n,                       (kLossSums, n = images)
//    confusion C*C,                     row-major [true class][predicted class], pixels
//    BF sum per class C, BF count per class C, image-MeanBF sum, image-MeanBF count]
// where the four BF blocks exist only at Stage::kEvaluation with per_image.
// Pixels whose target is labels.ignore_value, or any id outside [0, C), are
// in no count. Undefined values are NaN and left out of means (omitnan):
// class accuracy when the class has no true pixel, IoU when it has neither
// true nor predicted pixels, BF of a class in neither map of an image.
//
// Not thread-safe; one object per consumer.
class SegmentationMetrics : public Metrics {
 public:
  // labels: the classes (C = labels.size(); C <= 255 at evaluation; C = 0 only names the values)
  // and ignore_value (255 for pixel labels, -1 = none).
  SegmentationMetrics(data::LabelSpec labels, Stage stage, c10::Device device,
                      SegmentationMetricsOptions options = {});

  // logits: [B, C, H, W] float32 on the device (argmax over C is the
  // prediction); batch.target: [B, H, W] uint8 (or any integer) label ids on
  // the same device; loss: its mean over the batch. Adds B images. The
  // confusion matrix is one index_add_ per batch on the device with no host
  // sync (torch::bincount on CUDA reads the input's max back to the host).
  // Stage::kEvaluation also syncs: it checks that every target id is < C or
  // the ignore value (else Error kCorruptData), and with per_image copies
  // the batch's per-image confusion counts, predictions and targets to the
  // host, scores each image (O(C * H * W), images on parallel CPU threads) and adds the BF
  // sums back to the device.
  void update(const at::Tensor& logits, const data::Batch& batch, const LossTerms& loss) override;
  at::Tensor& sums() override { return sums_; }
  // Zeroes the sums and forgets the per-image records.
  void reset() override;
  // kTraining: {loss, global_accuracy, mean_iou}. kValidation: {loss,
  // global_accuracy, mean_accuracy, mean_iou, weighted_iou}. kEvaluation adds
  // mean_bf_score (with per_image). NaN when undefined (nothing added).
  MetricValues values() const override;
  // {"metrics": {name: value},
  //  "dataset": {"GlobalAccuracy", "MeanAccuracy", "MeanIoU", "WeightedIoU", "MeanBFScore"},
  //  "classes": [{"name", "accuracy", "iou", "mean_bf_score"}],
  //  "images": [{"index", "global_accuracy", "mean_accuracy", "mean_iou", "weighted_iou",
  //              "mean_bf_score"}]  (kEvaluation with per_image; else []),
  //  "confusion": [[pixels]], "normalized_confusion": [[share of row]],
  //  "confusion_axes": "rows: true class, columns: predicted class"}.
  // NaN (undefined, or BF not measured) is null. Image indices count the
  // images this object was given, from 0 in update order; the per-image
  // records are host state, not sums, so they are this process's only.
  nlohmann::json report() const override;
  // The data-set metrics table and the per-class table (Class | Accuracy |
  // IoU | MeanBFScore), as MATLAB prints them.
  std::string format_report() const override;

 private:
  struct ImageRecord {
    int64_t index = 0;
    double global_accuracy = 0;
    double mean_accuracy = 0;
    double mean_iou = 0;
    double weighted_iou = 0;
    double mean_bf_score = 0;
  };

  void add_image_scores(const at::Tensor& per_image_counts, const at::Tensor& predicted,
                        const at::Tensor& target);

  data::LabelSpec labels_;
  Stage stage_;
  SegmentationMetricsOptions options_;
  bool bf_ = false;  // kEvaluation with per_image: BF sums and image records
  at::Tensor sums_;  // float64 on the device, layout above
  std::vector<ImageRecord> images_;
};

}  // namespace gpulab::tasks
