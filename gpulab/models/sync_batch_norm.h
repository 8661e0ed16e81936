// Batch normalisation whose training statistics can span every rank of a
// data-parallel job (--sync-batchnorm): torch::nn::BatchNorm2d's behaviour,
// parameters, buffers and names (model files and torchvision weights are
// unchanged) and, once given an all-reduce, each channel normalised with the
// mean and variance of the global mini-batch instead of its own slice.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/options/batchnorm.h>

#include <functional>
#include <ostream>

namespace gpulab::models {

// Sums `tensor` element-wise over every rank, in place. Every rank calls it
// the same number of times in the same order (forward and backward).
using AllReduceSum = std::function<void(at::Tensor& tensor)>;

class SyncBatchNorm2dImpl : public torch::nn::Cloneable<SyncBatchNorm2dImpl> {
 public:
  explicit SyncBatchNorm2dImpl(const torch::nn::BatchNormOptions& options);

  // `x`: [N, C, H, W]. In training with an all-reduce set: statistics of the
  // global batch (sum over ranks of N*H*W values per channel), running stats
  // updated with them, gradients flowing through the all-reduce (its
  // backward sums the statistics' gradients over ranks, as PyTorch's
  // SyncBatchNorm). Otherwise exactly torch::nn::BatchNorm2d.
  at::Tensor forward(const at::Tensor& x);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  // Sets (or, with nullptr, clears) the all-reduce. Setup only.
  void set_all_reduce(AllReduceSum all_reduce) { all_reduce_ = std::move(all_reduce); }
  bool synchronised() const { return static_cast<bool>(all_reduce_); }

  torch::nn::BatchNormOptions options;
  // torch::nn::BatchNorm2d's parameters and buffers, under its names.
  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  at::Tensor synchronised_forward(const at::Tensor& x);
  AllReduceSum all_reduce_;
};
TORCH_MODULE(SyncBatchNorm2d);

// Gives every SyncBatchNorm2d inside `module` the all-reduce (nullptr clears
// it); returns how many there are.
int set_batch_norm_all_reduce(torch::nn::Module& module, const AllReduceSum& all_reduce);

}  // namespace gpulab::models
