// Per-label splitting with a portable Fisher-Yates shuffle.
#include "gpulab/data/split.h"

#include <torch/torch.h>

#include <random>

#include "gpulab/core/error.h"

namespace gpulab::data {
namespace {

std::vector<std::vector<int64_t>> indices_per_label(const Dataset& ds) {
  std::vector<std::vector<int64_t>> per(ds.class_names.size());
  auto labels = ds.labels.cpu().contiguous();
  const int64_t* l = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) per.at(static_cast<size_t>(l[i])).push_back(i);
  return per;
}

at::Tensor sorted_tensor(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return torch::tensor(v, torch::kInt64);
}

}  // namespace

std::pair<Dataset, Dataset> split_each_label(const Dataset& ds, double amount, uint64_t seed) {
  GPULAB_CHECK(amount > 0, ErrorKind::kInvalidArgument,
               "split amount must be a fraction in (0, 1) or a count >= 1, got {}", amount);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> first, rest;
  for (auto& idx : indices_per_label(ds)) {
    // Fisher-Yates with our own draws, so the split is the same on every platform.
    for (size_t i = idx.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(rng() % i);
      std::swap(idx[i - 1], idx[j]);
    }
    size_t take = amount < 1 ? static_cast<size_t>(std::llround(amount * idx.size()))
                             : std::min(idx.size(), static_cast<size_t>(amount));
    first.insert(first.end(), idx.begin(), idx.begin() + take);
    rest.insert(rest.end(), idx.begin() + take, idx.end());
  }
  return {subset(ds, sorted_tensor(first)), subset(ds, sorted_tensor(rest))};
}

Dataset take_each_label(const Dataset& ds, int64_t count) {
  std::vector<int64_t> keep;
  for (auto& idx : indices_per_label(ds)) {
    keep.insert(keep.end(), idx.begin(),
                idx.begin() + std::min<int64_t>(count, static_cast<int64_t>(idx.size())));
  }
  return subset(ds, sorted_tensor(keep));
}

}  // namespace gpulab::data
