// Where the trainer's mini-batches come from: the device-resident set
// (ResidentBatchSource) or the streaming loader (StreamingLoader). The trainer
// decides which samples form each step; the source only produces them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "gpulab/data/batch.h"

namespace gpulab::data {

// Used from one thread (the trainer's); implementations may run their own
// workers behind it.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t size() const = 0;  // samples in the set
  // The steps still to run this epoch (1-based), each a [B] int64 CPU tensor of
  // sample indices; the source may start preparing them at once (prefetch).
  // Replaces whatever was left of the previous epoch. B may be 0 (a rank's
  // share of a last mini-batch smaller than the world): next() then gives an
  // empty batch.
  virtual void start_epoch(int64_t epoch, std::vector<at::Tensor> step_indices) = 0;
  // The next step's batch, in the order given to start_epoch. Throws
  // Error(kInternal) when called past the last step.
  virtual Batch next() = 0;
  // Seconds next() spent blocked waiting for data, in total.
  virtual double wait_seconds() const { return 0; }
  // True when next() may return fewer samples than its step names (bad files
  // skipped as they are met); data-parallel ranks then agree on each step's
  // decoded size.
  virtual bool may_drop_samples() const { return false; }
};

}  // namespace gpulab::data
