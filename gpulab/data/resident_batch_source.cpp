// ResidentBatchSource: the epoch's steps in a queue, one index_select each.
#include "gpulab/data/resident_batch_source.h"

#include "gpulab/core/error.h"

namespace gpulab::data {

void ResidentBatchSource::start_epoch(int64_t /*epoch*/, std::vector<at::Tensor> step_indices) {
  steps_.assign(std::make_move_iterator(step_indices.begin()),
                std::make_move_iterator(step_indices.end()));
}

Batch ResidentBatchSource::next() {
  GPULAB_CHECK(!steps_.empty(), ErrorKind::kInternal,
               "next() called after the last step of the epoch");
  at::Tensor indices = std::move(steps_.front());
  steps_.pop_front();
  return batcher_.batch(indices);
}

}  // namespace gpulab::data
