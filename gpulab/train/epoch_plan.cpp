// Splitting an epoch's permutation into this rank's steps.
#include "gpulab/train/epoch_plan.h"

#include <algorithm>

namespace gpulab::train {

EpochPlan plan_epoch(const at::Tensor& order, int64_t samples, int64_t batch_size,
                     int64_t first_batch, int64_t batches, int rank, int world_size) {
  EpochPlan plan;
  for (int64_t b = first_batch; b < batches; ++b) {
    const int64_t begin = b * batch_size;
    const int64_t global_n = std::min(samples, begin + batch_size) - begin;
    plan.steps.push_back(order.slice(0, begin + global_n * rank / world_size,
                                     begin + global_n * (rank + 1) / world_size));
    plan.global_sizes.push_back(global_n);
  }
  return plan;
}

}  // namespace gpulab::train
