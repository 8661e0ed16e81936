// The training loop: drives a Task over device-resident data with the solver,
// schedule, validation, early stopping and checkpoints of TrainOptions, and
// writes RUN_DIR/{history.jsonl, checkpoints/, model.safetensors, summary.json}.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/data/batch_source.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/models/weight_file.h"
#include "gpulab/train/task.h"
#include "gpulab/train/train_options.h"

namespace gpulab::distributed {
class Communicator;
}

namespace gpulab::train {

struct FitResult {
  std::string stop_reason;  // "max-epochs", "validation-patience", "interrupted"
  int64_t epochs_completed = 0;
  int64_t iterations = 0;
  double minibatch_loss = 0;
  double minibatch_accuracy = 0;
  std::optional<double> validation_loss;      // of the output network
  std::optional<double> validation_accuracy;  // of the output network
  double wall_seconds = 0;
  double train_seconds = 0;
  int64_t images_seen = 0;       // over every rank and every process of the run
  double images_per_second = 0;  // training images per second, evaluation excluded
  // Time the loop spent blocked waiting for the next batch, and its share of
  // this process's training time (0 for device-resident data).
  double data_wait_seconds = 0;
  double data_wait_share = 0;
  std::string device;
  std::string model_path;
  // Data-parallel runs: ranks, backend, and the time the step waited for
  // gradient all-reduces after backward ended (communication not hidden).
  int world_size = 1;
  std::string dist_backend = "none";
  double allreduce_wait_seconds = 0;
  // "on" (single-process GPU steps replayed as CUDA graphs), else why not.
  std::string cuda_graphs;
  int64_t cuda_graph_captures = 0;  // a new learn rate makes a new capture
  int64_t cuda_graph_replays = 0;   // steps taken by replaying a graph

  nlohmann::json to_json() const;
};

// Where transfer learning starts: weights read from a file, loaded into the
// freshly built network before training (a resumed run's checkpoint wins).
struct InitialWeights {
  std::shared_ptr<const models::WeightFile> file;
  // Leave the file's classifier head out and keep a fresh one (new classes).
  bool replace_head = false;
  // The input normalisation the weights were trained with; when unset it is
  // computed from the training data.
  std::optional<data::Normalization> normalization;
};

// A training set streamed from a BatchSource (e.g. data::StreamingLoader): no
// decoded copy exists, so its shape and normalisation are given here.
struct StreamingTrainSet {
  data::BatchSource* source = nullptr;  // not owned; must outlive fit()
  std::vector<std::string> class_names;
  int64_t channels = 0, height = 0, width = 0;  // of the batches it produces
  // What the source applies to its pixels; recorded in the model file.
  data::Normalization normalization;
};

class Trainer {
 public:
  // run_dir must exist and be writable. `spec` is stored in the model's
  // metadata (the resolved run specification). Not thread-safe.
  Trainer(const Task& task, TrainOptions options, std::string run_dir,
          nlohmann::json spec = nlohmann::json::object());

  // When set and becoming true (e.g. from a SIGINT handler), training stops
  // after the current iteration with a checkpoint.
  void set_stop_flag(const std::atomic<bool>* flag) { stop_flag_ = flag; }

  // Starts from these weights instead of a random initialisation.
  void set_initial_weights(InitialWeights initial) { initial_ = std::move(initial); }

  // Trains as one rank of a data-parallel world (must outlive fit()). Every
  // rank calls fit() with the same data and options; each computes its slice
  // of every global mini-batch, gradients are averaged in buckets, and rank 0
  // alone prints and writes RUN_DIR. Unset: one process.
  void set_communicator(distributed::Communicator* communicator) { communicator_ = communicator; }

  // Trains on `train`, validating on `validation` when given. resume: continue
  // from RUN_DIR/checkpoints (weights, optimizer, schedule, RNG, sampler), or
  // from the beginning when the run was stopped before its first checkpoint.
  // Throws Error(kRuntime) when the loss becomes NaN/Inf, naming the iteration;
  // the last good checkpoint stays in place.
  FitResult fit(const data::Dataset& train, const data::Dataset* validation, bool resume);
  // The same from a streaming source. Each epoch the trainer hands the source
  // the list of the steps still to run ([B] int64 sample indices each), then
  // takes one batch per step. Initial weights' normalisation is not applied
  // here: the caller builds the source with it.
  FitResult fit(const StreamingTrainSet& train, const data::Dataset* validation, bool resume);

 private:
  // `shape`: class names and image size for the model (its rows unused).
  FitResult fit_source(data::BatchSource& source, const data::Dataset& shape,
                       const data::Normalization& norm, const data::Dataset* validation,
                       bool resume);

  const Task& task_;
  TrainOptions options_;
  std::string run_dir_;
  nlohmann::json spec_;
  const std::atomic<bool>* stop_flag_ = nullptr;
  InitialWeights initial_;
  distributed::Communicator* communicator_ = nullptr;
};

}  // namespace gpulab::train
