// The validate phase of the training loop: each rank measures its contiguous
// share of the validation set with the task's Metrics, in fp32 as `gpulab
// evaluate` does, and the sums are all-reduced once.
#include <torch/torch.h>

#include "gpulab/train/training_loop.h"

namespace gpulab::train::detail {

void TrainingLoop::sum_over_ranks(at::Tensor& sums) const {
  if (!distributed_) return;
  // NCCL reduces device tensors, Gloo host ones.
  std::vector<at::Tensor> tensors = {comm_.backend() == "nccl" ? sums : sums.cpu()};
  comm_.all_reduce_sum(tensors);
  if (!tensors[0].is_same(sums)) sums.copy_(tensors[0]);
}

tasks::MetricValues TrainingLoop::validate() {
  // Batch-norm statistics may differ between ranks (each saw its own slices).
  if (distributed_) {
    std::vector<at::Tensor> buffers;
    for (auto& b : model_->buffers()) buffers.push_back(b.data());
    comm_.broadcast(buffers, 0);
  }
  torch::NoGradGuard no_grad;
  model_->eval();
  const auto& world = comm_.world();
  const int64_t size = val_batcher_->size();
  const int64_t first = size * world.rank / world.size;
  const int64_t last = size * (world.rank + 1) / world.size;
  const int64_t batch_size = std::max<int64_t>(o_.batch_size(), 256);
  auto metrics = task_.metrics(tasks::Stage::kValidation, device_);
  for (int64_t b = first; b < last; b += batch_size) {
    const data::Batch batch = val_batcher_->range(b, std::min(last, b + batch_size));
    const at::Tensor output = model_->forward(precision_.prepare(batch.input)).to(torch::kFloat32);
    metrics->update(output, batch, task_.loss(output, batch));
  }
  sum_over_ranks(metrics->sums());
  return metrics->values();
}

}  // namespace gpulab::train::detail
