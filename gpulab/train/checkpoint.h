// Resumable checkpoints in RUN_DIR/checkpoints/: weights (safetensors),
// optimizer state and RNG (LibTorch archive), and the trainer's position.
// A checkpoint becomes the latest only when all its files are on disk
// (latest.json is written last, atomically), so a kill at any moment leaves
// the previous checkpoint usable.
#pragma once

#include <limits>
#include <string>

#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

#include "gpulab/models/network.h"

namespace gpulab::train {

// Where training stands; everything needed to continue bit-identically.
struct TrainerState {
  int64_t epoch = 1;           // epoch in progress, 1-based
  int64_t batch_in_epoch = 0;  // next mini-batch within that epoch
  int64_t iteration = 0;       // completed iterations
  double wall_seconds = 0;     // wall time of earlier processes of this run
  double train_seconds = 0;    // time in training steps (excl. validation, checkpoints)
  int64_t images_seen = 0;
  // The best validation value of the objective metric so far (NaN: none yet),
  // and every validation value measured then.
  double best_objective = std::numeric_limits<double>::quiet_NaN();
  nlohmann::json best_validation = nlohmann::json::object();
  int64_t best_iteration = 0;
  int64_t validations_without_improvement = 0;
  int64_t history_lines = 0;
  // Global mini-batch the position above counts in (0: a checkpoint written
  // before this was recorded).
  int64_t batch_size = 0;

  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j);
};

// Re-expresses a mid-epoch position in mini-batches of `batch_size` when the
// checkpoint counted in another size (a resume with another world size under
// --scale-with-workers, or another --batch-size), so no image is skipped or
// seen twice. Throws Error(kInvalidArgument) when the images done in the
// epoch are not a whole number of the new mini-batches.
void rebase_to_batch_size(TrainerState& state, int64_t batch_size);

class CheckpointStore {
 public:
  // dir: RUN_DIR/checkpoints. keep: checkpoints retained. A writer creates
  // the folder and checks it is writable at once; a reader (a data-parallel
  // rank other than 0) only loads, and never touches the disk otherwise.
  CheckpointStore(std::string dir, int keep, bool writer = true);

  // Returns the path of the checkpoint's weights file.
  std::string save(const models::Network& network, const torch::optim::Optimizer& optimizer,
                   const TrainerState& state);
  bool has_latest() const;
  // Restores network, optimizer and the CPU generator; returns the state.
  // Throws Error(kNotFound) when there is no checkpoint, Error(kCorruptData)
  // naming the file when one is damaged.
  TrainerState load_latest(models::Network& network, torch::optim::Optimizer& optimizer) const;
  // Path of the latest checkpoint's weights ("" when none).
  std::string latest_weights() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int keep_;
};

}  // namespace gpulab::train
