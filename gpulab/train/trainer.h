// The trainer: drives a Task over a batch source with the solver, schedule,
// validation, early stopping and checkpoints of TrainOptions, and writes
// RUN_DIR/{history.jsonl, checkpoints/, model.safetensors, summary.json}.
// The loop itself is detail::TrainingLoop (training_loop.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "gpulab/data/batch_source.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/normalization.h"
#include "gpulab/models/weight_file.h"
#include "gpulab/tasks/task.h"
#include "gpulab/train/fit_result.h"
#include "gpulab/train/train_options.h"

namespace gpulab::distributed {
class Communicator;
}

namespace gpulab::train {

// Where transfer learning starts: weights read from a file, loaded into the
// freshly built network before training (a resumed run's checkpoint wins).
struct InitialWeights {
  std::shared_ptr<const models::WeightFile> file;
  // Leave the file's head out and keep a fresh one (new classes).
  bool replace_head = false;
  // The input normalisation the weights were trained with; when unset it is
  // computed from the training data.
  std::optional<data::Normalization> normalization;
};

// What the loop trains on.
struct TrainingSet {
  data::BatchSource* source = nullptr;  // not owned; must outlive fit()
  tasks::DataShape shape;               // of the batches `source` produces
  // What `source` applies to its pixels; recorded in the model file.
  data::Normalization normalization;
  // Validation images at the training size, unnormalised, with targets; may
  // be null. Not owned.
  const data::Dataset* validation = nullptr;
  // Files the data left out (skip_bad_files, missing remote objects), asked
  // once after the last step on every rank (it may run a collective, e.g. a
  // union over the ranks' skipped files); unset = none.
  std::function<int64_t()> count_skipped_files;
};

class Trainer {
 public:
  // run_dir must exist and be writable. `spec` is stored in the model's
  // metadata (the resolved run specification). The task is set up by fit().
  // Not thread-safe.
  Trainer(tasks::Task& task, TrainOptions options, std::string run_dir,
          nlohmann::json spec = nlohmann::json::object());

  // When set and becoming true (e.g. from a SIGINT handler), training stops
  // after the current iteration with a checkpoint.
  void set_stop_flag(const std::atomic<bool>* flag) { stop_flag_ = flag; }

  // Starts from these weights instead of a random initialisation.
  void set_initial_weights(InitialWeights initial) { initial_ = std::move(initial); }

  // Trains as one rank of a data-parallel world (must outlive fit()). Every
  // rank calls fit() with the same data and options; each computes its slice
  // of every global mini-batch, gradients are averaged in buckets, and rank 0
  // alone reports and writes RUN_DIR. Unset: one process.
  void set_communicator(distributed::Communicator* communicator) { communicator_ = communicator; }

  // Trains on `set`. resume: continue from RUN_DIR/checkpoints (weights,
  // optimizer, schedule, RNG, sampler), or from the beginning when the run
  // was stopped before its first checkpoint. Each epoch the trainer hands the
  // source the steps still to run ([B] int64 sample indices each), then takes
  // one batch per step. Writes summary.json once, complete. Throws Error(kRuntime) when the loss
  // becomes NaN/Inf, naming the iteration; the last good checkpoint stays in place.
  FitResult fit(const TrainingSet& set, bool resume);

  // The same for a data set held on the device: its normalisation is the
  // initial weights', else computed from `train`.
  FitResult fit(const data::Dataset& train, const data::Dataset* validation, bool resume);

 private:
  tasks::Task& task_;
  TrainOptions options_;
  std::string run_dir_;
  nlohmann::json spec_;
  const std::atomic<bool>* stop_flag_ = nullptr;
  InitialWeights initial_;
  distributed::Communicator* communicator_ = nullptr;
};

// The shape of an in-memory set (its images' size and its labels).
tasks::DataShape shape_of(const data::Dataset& ds);

}  // namespace gpulab::train
