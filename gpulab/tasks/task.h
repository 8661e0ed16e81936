// The Task API: what is specific to a problem (the network it configures for
// the data, its loss, its metrics, what its model file records) apart from
// the loop that drives it. The trainer, `gpulab evaluate` and `gpulab
// predict` see only this interface; classification, segmentation and style
// transfer implement it, and tests may register their own.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/data/batch.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/label_spec.h"
#include "gpulab/data/normalization.h"
#include "gpulab/data/training_data.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/network.h"
#include "gpulab/models/output_kind.h"
#include "gpulab/tasks/metrics.h"

namespace gpulab::tasks {

// The shape of the data a network is built for.
struct DataShape {
  int64_t channels = 0;  // of the input images
  int64_t height = 0;    // of the training batches (the train size)
  int64_t width = 0;
  data::LabelSpec labels;  // empty for unlabelled data
  // Per-class pixel counts of the training label maps (segmentation's class
  // weights); empty for other data and when set up for a trained model.
  data::PixelLabelCounts label_counts;
};

// What a task's batches carry as data::Batch::target.
enum class TargetKind {
  kNone,        // undefined tensor (unlabelled images)
  kClassIndex,  // [B] int64 class indices
  kLabelMap,    // [B, H, W] uint8 label ids, LabelSpec::ignore_value = no label
};

// The criterion for early stopping (validation patience) and for keeping the
// best-validation network: a metric of the task's values and its direction.
struct Objective {
  std::string metric = "loss";
  bool higher_is_better = false;
};

// A column of the progress table fed by a metric.
struct ProgressColumn {
  std::string header;     // top line, e.g. "Mini-batch"
  std::string subheader;  // second line, e.g. "Accuracy"
  Stage stage;            // kTraining (last mini-batch) or kValidation
  std::string metric;     // name in the stage's MetricValues
  bool percent = false;   // shown as 87.50% instead of 0.8750
};

// Set up once per process before training or evaluating.
struct TaskSetup {
  c10::Device device = c10::Device(c10::kCPU);
  // The data the network is trained or evaluated on (its labels name the
  // classes in reports).
  DataShape data;
  // How the batches' inputs were normalised from uint8 pixels.
  data::Normalization normalization;
  // Set up for a trained model (evaluate, predict): what metadata() returned
  // when it was trained (e.g. the class weights computed from its data).
  nlohmann::json recorded_metadata = nlohmann::json::object();
};

// What Task::after_checkpoint sees: the network as trained so far, on its
// device and in training mode, and where training stands.
struct CheckpointContext {
  models::Network& network;
  std::string run_dir;
  int64_t epoch = 0;
  int64_t iteration = 0;
};

// A task is configured once and then used from one thread, except loss() and
// metrics(), which are const and may be called from the training thread only
// after setup().
class Task {
 public:
  virtual ~Task() = default;

  // The registry name ("classify", "segment", "style").
  virtual std::string name() const = 0;

  // What its batches' targets are.
  virtual TargetKind target_kind() const = 0;

  // The run's training (and validation) data: classification reads IDX or
  // labelled image folders, style transfer folders of unlabelled images,
  // segmentation image and label-map pairs. Throws the datastores' errors.
  virtual data::TrainingData open_training_data(const data::DataRequest& request) const = 0;

  // Labelled data to evaluate a trained model on, as `gpulab evaluate` reads
  // it: images at a size the network takes (as validation decoded them), with
  // targets in the model's label order; `skipped` (if given) receives the
  // files left out. Throws Error(kUnavailable) for a task without evaluation
  // data.
  virtual data::Dataset open_evaluation_data(const data::DataPath& path,
                                             const data::DataOptions& options,
                                             const models::ModelMetadata& model,
                                             const std::string& index_cache_dir,
                                             const core::Log& log, int64_t* skipped) const;

  // The network for data of this shape (architecture and options given to
  // the task when it was made).
  virtual models::ModelConfig model_config(const DataShape& data) const = 0;

  // Called once per process, after the network is on its device and before
  // the first loss(): where a task moves and freezes a second network (style
  // transfer's loss network) or precomputes constants.
  virtual void setup(const TaskSetup& setup) {}

  // The batch's loss for the network's `output` (float32, on the device).
  // Sees the whole batch: style transfer compares the output to its input.
  // Must not synchronise with the host: it runs inside a CUDA graph capture.
  virtual LossTerms loss(const at::Tensor& output, const data::Batch& batch) const = 0;

  // A fresh accumulator for `stage` on `device`.
  virtual std::unique_ptr<Metrics> metrics(Stage stage, c10::Device device) const = 0;

  // The headline metric (accuracy, mean_iou; "loss" for tasks without one),
  // one of the names metrics() reports.
  virtual std::string primary_metric() const = 0;

  // The default early-stopping and best-validation criterion (the options
  // may name another metric).
  virtual Objective default_objective() const { return {}; }

  // The progress table's metric columns, between "Time Elapsed" and "Base
  // Learning Rate".
  virtual std::vector<ProgressColumn> progress_columns() const = 0;

  // What the network's output is (how inference decodes it).
  virtual models::OutputKind output_kind() const = 0;

  // Whether the network takes only the training input size (a network with
  // fully connected layers) or any size (fully convolutional).
  virtual bool fixed_input_size(const models::ModelConfig& config) const { return true; }

  // Called on the main rank after each checkpoint is written (style
  // transfer's preview image). Must leave the network's mode as it found it.
  virtual void after_checkpoint(const CheckpointContext& context) {}

  // The task's own model-file metadata (e.g. segmentation's ignore value
  // policy, style transfer's style image), stored under "task_metadata".
  virtual nlohmann::json metadata() const { return nlohmann::json::object(); }
};

}  // namespace gpulab::tasks
