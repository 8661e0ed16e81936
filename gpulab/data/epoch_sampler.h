// Visiting order of a data set per epoch (MATLAB's Shuffle option). The order
// is a pure function of (seed, epoch), so a resumed run sees the same batches.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace gpulab::data {

enum class ShuffleMode { kOnce, kNever, kEveryEpoch };

// "once|never|every-epoch"; throws Error(kInvalidArgument) listing them.
ShuffleMode parse_shuffle_mode(const std::string& name);
std::string to_string(ShuffleMode mode);

class EpochSampler {
 public:
  EpochSampler(int64_t size, ShuffleMode mode, uint64_t seed);
  // [size] int64 permutation for `epoch` (1-based).
  at::Tensor order(int64_t epoch) const;
  // Mini-batches per epoch; the last may be smaller than batch_size.
  int64_t batches_per_epoch(int64_t batch_size) const;
  int64_t size() const { return size_; }

 private:
  int64_t size_;
  ShuffleMode mode_;
  uint64_t seed_;
};

}  // namespace gpulab::data
