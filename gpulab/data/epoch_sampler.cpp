// Deterministic per-epoch permutations from a private generator.
#include "gpulab/data/epoch_sampler.h"

#include <torch/torch.h>

#include <algorithm>
#include <random>

#include "gpulab/core/error.h"
#include "gpulab/core/seed.h"
#include "gpulab/core/text.h"

namespace gpulab::data {

ShuffleMode parse_shuffle_mode(const std::string& name) {
  const std::string lower = core::to_lower(name);
  if (lower == "once") return ShuffleMode::kOnce;
  if (lower == "never") return ShuffleMode::kNever;
  if (lower == "every-epoch" || lower == "every_epoch") return ShuffleMode::kEveryEpoch;
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "unknown shuffle mode '{}'; valid: once, never, every-epoch", name);
}

std::string to_string(ShuffleMode mode) {
  switch (mode) {
    case ShuffleMode::kOnce:
      return "once";
    case ShuffleMode::kNever:
      return "never";
    case ShuffleMode::kEveryEpoch:
      return "every-epoch";
  }
  return "once";
}

EpochSampler::EpochSampler(int64_t size, ShuffleMode mode, uint64_t seed)
    : size_(size), mode_(mode), seed_(seed) {
  GPULAB_CHECK(size > 0, ErrorKind::kInvalidArgument, "cannot sample an empty data set");
}

at::Tensor EpochSampler::order(int64_t epoch) const {
  auto order = torch::arange(size_, torch::kInt64);
  if (mode_ == ShuffleMode::kNever) return order;
  uint64_t stream = mode_ == ShuffleMode::kOnce ? 0 : static_cast<uint64_t>(epoch);
  std::mt19937_64 rng(core::mix_seed(seed_, stream));
  int64_t* p = order.data_ptr<int64_t>();
  for (int64_t i = size_ - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return order;
}

int64_t EpochSampler::batches_per_epoch(int64_t batch_size) const {
  return (size_ + batch_size - 1) / batch_size;
}

}  // namespace gpulab::data
