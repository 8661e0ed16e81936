// The device-resident path as a BatchSource: sets that fit in memory and need
// no per-sample augmentation (IDX data, small image folders).
#pragma once

#include <deque>
#include <memory>

#include "gpulab/data/batch_source.h"
#include "gpulab/data/resident_batcher.h"

namespace gpulab::data {

// A batch is an index_select on the device, so next() never waits.
class ResidentBatchSource : public BatchSource {
 public:
  // Borrows `batcher`, which must outlive it.
  explicit ResidentBatchSource(const ResidentBatcher& batcher) : batcher_(batcher) {}
  // Owns `batcher`.
  explicit ResidentBatchSource(std::shared_ptr<const ResidentBatcher> batcher)
      : owned_(std::move(batcher)), batcher_(*owned_) {}
  int64_t size() const override { return batcher_.size(); }
  void start_epoch(int64_t epoch, std::vector<at::Tensor> step_indices) override;
  Batch next() override;

 private:
  std::shared_ptr<const ResidentBatcher> owned_;  // null when borrowed
  const ResidentBatcher& batcher_;
  std::deque<at::Tensor> steps_;  // the epoch's steps not yet handed out
};

}  // namespace gpulab::data
