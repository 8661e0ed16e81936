// The device-resident path as a BatchSource: sets that fit in memory and need
// no per-sample augmentation (IDX data, small image folders).
#pragma once

#include <deque>

#include "gpulab/data/batch_source.h"
#include "gpulab/data/resident_batcher.h"

namespace gpulab::data {

// Borrows `batcher`, which must outlive it. A batch is an index_select on the
// device, so next() never waits.
class ResidentBatchSource : public BatchSource {
 public:
  explicit ResidentBatchSource(const ResidentBatcher& batcher) : batcher_(batcher) {}
  int64_t size() const override { return batcher_.size(); }
  void start_epoch(int64_t epoch, std::vector<at::Tensor> step_indices) override;
  Batch next() override;

 private:
  const ResidentBatcher& batcher_;
  std::deque<at::Tensor> steps_;  // the epoch's steps not yet handed out
};

}  // namespace gpulab::data
