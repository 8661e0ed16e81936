// Which samples each step of an epoch takes on this rank: a pure plan, kept
// apart from running it (the loader prefetches from it, tests check it).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace gpulab::train {

struct EpochPlan {
  // This rank's sample indices per remaining step, [b] int64 CPU each
  // (b may be 0: the rank's slice of a last mini-batch smaller than the world).
  std::vector<at::Tensor> steps;
  // The global mini-batch size of each of those steps.
  std::vector<int64_t> global_sizes;
};

// The steps first_batch..batches-1 of an epoch over `order` (the epoch's
// permutation of `samples` indices, [samples] int64): global mini-batches of
// `batch_size` in order, the last one partial, each split into `world_size`
// contiguous slices of which `rank` takes its own.
EpochPlan plan_epoch(const at::Tensor& order, int64_t samples, int64_t batch_size,
                     int64_t first_batch, int64_t batches, int rank, int world_size);

}  // namespace gpulab::train
