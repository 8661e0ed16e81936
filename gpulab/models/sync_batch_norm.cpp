// The statistics are per-channel sums (and sums of squares, in float64) that
// one all-reduce makes global; the all-reduce is an autograd function whose
// backward all-reduces the statistics' gradients, so the input gradient is
// the one of the whole batch.
#include "gpulab/models/sync_batch_norm.h"

#include <torch/torch.h>

namespace gpulab::models {
namespace {

// y = sum over ranks of x; dL/dx = sum over ranks of dL/dy.
class AllReduceFunction : public torch::autograd::Function<AllReduceFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const AllReduceSum* all_reduce) {
    ctx->saved_data["all_reduce"] = reinterpret_cast<int64_t>(all_reduce);
    at::Tensor y = x.clone();
    (*all_reduce)(y);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto* all_reduce =
        reinterpret_cast<const AllReduceSum*>(ctx->saved_data["all_reduce"].toInt());
    at::Tensor g = grads[0].contiguous().clone();
    (*all_reduce)(g);
    return {g, at::Tensor()};
  }
};

}  // namespace

SyncBatchNorm2dImpl::SyncBatchNorm2dImpl(const torch::nn::BatchNormOptions& options)
    : options(options) {
  reset();
}

void SyncBatchNorm2dImpl::reset() {
  // As torch::nn::BatchNorm2d: weight 1, bias 0, running mean 0 and var 1.
  if (options.affine()) {
    weight = register_parameter("weight", torch::ones({options.num_features()}));
    bias = register_parameter("bias", torch::zeros({options.num_features()}));
  } else {
    weight = register_parameter("weight", at::Tensor(), /*requires_grad=*/false);
    bias = register_parameter("bias", at::Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({options.num_features()}));
    running_var = register_buffer("running_var", torch::ones({options.num_features()}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  } else {
    running_mean = register_buffer("running_mean", at::Tensor());
    running_var = register_buffer("running_var", at::Tensor());
    num_batches_tracked = register_buffer("num_batches_tracked", at::Tensor());
  }
}

void SyncBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "gpulab::models::SyncBatchNorm2d(" << options.num_features()
         << ", eps=" << options.eps() << ", affine=" << options.affine()
         << ", track_running_stats=" << options.track_running_stats()
         << (all_reduce_ ? ", synchronised" : "") << ")";
}

at::Tensor SyncBatchNorm2dImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "SyncBatchNorm2d: expected [N, C, H, W], got ", x.sizes());
  if (all_reduce_ && is_training()) return synchronised_forward(x);
  // torch::nn::BatchNorm2d's forward.
  double factor = options.momentum().value_or(0.0);
  if (is_training() && options.track_running_stats()) {
    num_batches_tracked.add_(1);
    if (!options.momentum().has_value()) factor = 1.0 / num_batches_tracked.item<double>();
  }
  return torch::batch_norm(x, weight, bias, running_mean, running_var,
                           is_training() || !options.track_running_stats(), factor, options.eps(),
                           at::globalContext().userEnabledCuDNN());
}

at::Tensor SyncBatchNorm2dImpl::synchronised_forward(const at::Tensor& x) {
  const int64_t channels = x.size(1);
  const std::vector<int64_t> dims = {0, 2, 3};
  // [2C + 1] in float64: sums, sums of squares, count.
  const at::Tensor local =
      torch::cat({x.sum(dims, false, at::kDouble), x.square().sum(dims, false, at::kDouble),
                  torch::full({1}, static_cast<double>(x.numel() / channels),
                              x.options().dtype(at::kDouble))});
  const at::Tensor global = AllReduceFunction::apply(local, &all_reduce_);
  const at::Tensor count = global.narrow(0, 2 * channels, 1);
  const at::Tensor mean = global.narrow(0, 0, channels) / count;
  const at::Tensor var =
      (global.narrow(0, channels, channels) / count - mean.square()).clamp_min(0);
  const at::Tensor invstd = (var + options.eps()).rsqrt();
  if (options.track_running_stats()) {
    // No host sync: the count and, without a momentum, the cumulative factor
    // stay on the device (a GPU step then never waits for its kernels here).
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
    const at::Tensor unbiased = var * (count / (count - 1).clamp_min(1));
    if (options.momentum().has_value()) {
      const double factor = *options.momentum();
      running_mean.mul_(1 - factor).add_(mean.to(running_mean.scalar_type()), factor);
      running_var.mul_(1 - factor).add_(unbiased.to(running_var.scalar_type()), factor);
    } else {
      const at::Tensor factor = 1.0 / num_batches_tracked.to(at::kDouble);
      running_mean.mul_(1 - factor).add_((mean * factor).to(running_mean.scalar_type()));
      running_var.mul_(1 - factor).add_((unbiased * factor).to(running_var.scalar_type()));
    }
  }
  at::Tensor scale = invstd.to(x.scalar_type());
  at::Tensor shift = (-mean * invstd).to(x.scalar_type());
  if (options.affine()) {
    shift = shift * weight + bias;
    scale = scale * weight;
  }
  return x * scale.view({1, channels, 1, 1}) + shift.view({1, channels, 1, 1});
}

int set_batch_norm_all_reduce(torch::nn::Module& module, const AllReduceSum& all_reduce) {
  int count = 0;
  for (const auto& child : module.modules(/*include_self=*/true)) {
    if (auto* bn = child->as<SyncBatchNorm2dImpl>()) {
      bn->set_all_reduce(all_reduce);
      ++count;
    }
  }
  return count;
}

}  // namespace gpulab::models
