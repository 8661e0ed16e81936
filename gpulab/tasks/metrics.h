// A task's measures of a network's outputs (loss, accuracy, IoU, ...),
// accumulated on the device with no host sync per batch. Validation during
// training and `gpulab evaluate` use the same Metrics object, at the same
// precision, so their numbers agree.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "gpulab/data/batch.h"

namespace gpulab::tasks {

// A batch's loss as the task defines it: `total` is what backward() runs
// on; `parts` are named components logged beside it (style transfer's
// content_loss, style_loss, tv_loss). Every tensor is 0-dim float32 on the
// batch's device and is the mean over the batch.
struct LossTerms {
  at::Tensor total;
  std::vector<std::pair<std::string, at::Tensor>> parts;
};

// Named values in display order, e.g. {{"loss", 0.31}, {"accuracy", 0.9}}.
// NaN marks a value that is undefined for the data seen (no pixel of any
// class, say).
using MetricValues = std::vector<std::pair<std::string, double>>;

// The value named `name`, if present.
std::optional<double> find_metric(const MetricValues& values, const std::string& name);

// Which data a Metrics object measures: the trainer's last mini-batch (the
// progress table's "Mini-batch" columns), the validation set, or a whole
// `gpulab evaluate` run (which may add costlier measures, e.g. BF scores,
// and per-class and per-image reports).
enum class Stage { kTraining, kValidation, kEvaluation };

// Not thread-safe; one object per consumer.
class Metrics {
 public:
  virtual ~Metrics() = default;

  // Adds one batch: `output` is the network's output as float32 on the
  // device, `batch` its input and target, `loss` its loss terms (means over
  // the batch). Must not synchronise with the host (no .item()) except in
  // Stage::kEvaluation measures that need the host (documented per task).
  virtual void update(const at::Tensor& output, const data::Batch& batch,
                      const LossTerms& loss) = 0;

  // Everything accumulated, as one flat float64 tensor on the device: ranks of
  // a data-parallel job sum it (all-reduce) in place before values(), so
  // every measure must be a function of sums. Same length on every rank.
  virtual at::Tensor& sums() = 0;

  // Forgets everything added.
  virtual void reset() = 0;

  // The named values from sums() (one host sync), in display order. The
  // first is always "loss" (the mean loss per sample).
  virtual MetricValues values() const = 0;

  // Everything `gpulab evaluate` reports, as JSON: at least {"metrics":
  // {name: value}}; tasks add per-class tables, confusion matrices, per-image
  // values. Defaults to the values.
  virtual nlohmann::json report() const;

  // The same as text for a terminal (tables). Defaults to one line per value.
  virtual std::string format_report() const;
};

// The convention every task's sums start with: sums[0] += loss.total * n,
// sums[1] += n, for a batch of n samples (so the mean loss is over samples
// however batches and ranks split them).
constexpr int64_t kLossSums = 2;
void add_loss_sums(at::Tensor& sums, const LossTerms& loss, int64_t samples);
// sums[0] / sums[1] of host sums; NaN when no sample was added.
double mean_loss(const at::Tensor& cpu_sums);

}  // namespace gpulab::tasks
