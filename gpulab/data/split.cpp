// Per-label splitting with a portable Fisher-Yates shuffle.
#include "gpulab/data/split.h"

#include <torch/torch.h>

#include <random>

#include "gpulab/core/error.h"

namespace gpulab::data {
namespace {

std::vector<std::vector<int64_t>> indices_per_label(const Dataset& ds) {
  std::vector<std::vector<int64_t>> per(ds.label_spec.names.size());
  auto labels = ds.targets.cpu().contiguous();
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
    // A fraction never empties a label's second part (the training images
    // of --val-split): a label of 1 image at 0.5 stays there whole.
    if (amount < 1 && !idx.empty()) take = std::min(take, idx.size() - 1);
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

Dataset select_classes(const Dataset& ds, const std::vector<std::string>& wanted) {
  const int64_t n_classes = static_cast<int64_t>(ds.label_spec.names.size());
  std::vector<int64_t> new_label(n_classes, -1);
  std::vector<std::string> names;
  for (const auto& w : wanted) {
    int64_t index = -1;
    auto it = std::find(ds.label_spec.names.begin(), ds.label_spec.names.end(), w);
    if (it != ds.label_spec.names.end()) {
      index = it - ds.label_spec.names.begin();
    } else if (!w.empty() && std::all_of(w.begin(), w.end(), ::isdigit)) {
      index = std::stoll(w);
    }
    GPULAB_CHECK(index >= 0 && index < n_classes, ErrorKind::kInvalidArgument,
                 "class '{}' is not in '{}'; its classes are {} (names or indices 0..{})", w,
                 ds.source, fmt::join(ds.label_spec.names, ", "), n_classes - 1);
    GPULAB_CHECK(new_label[index] < 0, ErrorKind::kInvalidArgument, "class '{}' is selected twice",
                 w);
    new_label[index] = static_cast<int64_t>(names.size());
    names.push_back(ds.label_spec.names[index]);
  }
  auto mapping = torch::tensor(new_label, torch::kInt64);
  auto relabelled = mapping.index_select(0, ds.targets);
  Dataset out = subset(ds, relabelled.ge(0).nonzero().flatten());
  out.targets = mapping.index_select(0, out.targets);
  out.label_spec.names = names;
  return out;
}

}  // namespace gpulab::data
