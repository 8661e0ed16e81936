// GradientReducer: bucket assignment, the gradient hooks, launch order.
#include "gpulab/distributed/gradient_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <functional>

#include "gpulab/core/error.h"

namespace gpulab::distributed {
namespace {

// Runs after a parameter's AccumulateGrad node has stored its gradient.
class StoredHook final : public torch::autograd::FunctionPostHook {
 public:
  explicit StoredHook(std::function<void()> on_stored) : on_stored_(std::move(on_stored)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    on_stored_();
    return outputs;
  }

 private:
  std::function<void()> on_stored_;
};

}  // namespace

GradientReducer::GradientReducer(std::vector<at::Tensor> parameters, Communicator& communicator,
                                 const ReducerOptions& options)
    : parameters_(std::move(parameters)), communicator_(communicator) {
  GPULAB_CHECK(!parameters_.empty(), ErrorKind::kInvalidArgument,
               "the gradient reducer needs at least one trainable parameter");
  GPULAB_CHECK(options.bucket_cap_mb() > 0 && options.first_bucket_cap_mb() > 0,
               ErrorKind::kInvalidArgument, "bucket caps must be positive, got {} and {} MiB",
               options.first_bucket_cap_mb(), options.bucket_cap_mb());
  const auto mib = [](double mb) { return static_cast<int64_t>(mb * 1024 * 1024); };
  // Reverse order: the last layers' gradients are ready first.
  std::vector<size_t> current;
  int64_t current_bytes = 0;
  auto close = [&] {
    if (!current.empty()) bucket_params_.push_back(current);
    current.clear();
    current_bytes = 0;
  };
  for (size_t k = parameters_.size(); k-- > 0;) {
    const at::Tensor& p = parameters_[k];
    if (!current.empty() && (p.scalar_type() != parameters_[current[0]].scalar_type() ||
                             p.device() != parameters_[current[0]].device())) {
      close();
    }
    current.push_back(k);
    current_bytes += p.numel() * static_cast<int64_t>(p.element_size());
    const int64_t cap =
        mib(bucket_params_.empty() ? options.first_bucket_cap_mb() : options.bucket_cap_mb());
    if (current_bytes >= cap) close();
  }
  close();

  location_.resize(parameters_.size());
  buckets_.resize(bucket_params_.size());
  for (size_t b = 0; b < bucket_params_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    int64_t numel = 0;
    for (size_t k : bucket_params_[b]) numel += parameters_[k].numel();
    const at::Tensor& first = parameters_[bucket_params_[b][0]];
    bucket.buffer = torch::zeros({numel}, first.options());
    int64_t offset = 0;
    for (size_t s = 0; s < bucket_params_[b].size(); ++s) {
      const at::Tensor& p = parameters_[bucket_params_[b][s]];
      bucket.slots.push_back(bucket.buffer.narrow(0, offset, p.numel()).view(p.sizes()));
      location_[bucket_params_[b][s]] = {b, s};
      offset += p.numel();
    }
    bucket.ready.assign(bucket.slots.size(), false);
  }
  for (size_t k = 0; k < parameters_.size(); ++k) {
    GPULAB_CHECK(parameters_[k].is_leaf() && parameters_[k].requires_grad(),
                 ErrorKind::kInvalidArgument,
                 "gradient reducer: parameter {} is not a leaf tensor that requires grad", k);
    // A hook after the accumulation, not a tensor hook before it: autograd
    // then moves the gradient into grad without a copy, and one copy puts it
    // in the bucket.
    accumulators_.push_back(torch::autograd::impl::grad_accumulator(parameters_[k]));
    hook_keys_.push_back(accumulators_.back()->add_post_hook(
        std::make_unique<StoredHook>([this, k] { on_gradient_stored(k); })));
  }
  prepare_for_backward();
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < accumulators_.size(); ++k) {
    accumulators_[k]->del_post_hook(hook_keys_[k]);
  }
}

void GradientReducer::prepare_for_backward() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Bucket& bucket : buckets_) {
    std::fill(bucket.ready.begin(), bucket.ready.end(), false);
    bucket.pending = bucket.slots.size();
    bucket.reduce.reset();
  }
  if (sync_) {
    for (at::Tensor& p : parameters_) p.mutable_grad() = at::Tensor();
  }
  next_launch_ = 0;
  trace_ = ReduceTrace{};
  step_start_ = std::chrono::steady_clock::now();
}

double GradientReducer::since_prepare() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start_).count();
}

void GradientReducer::on_gradient_stored(size_t param) {
  if (!sync_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto [b, s] = location_[param];
  Bucket& bucket = buckets_[b];
  // A second backward before finish() accumulates into the slot itself.
  if (bucket.ready[s]) return;
  at::Tensor& grad = parameters_[param].mutable_grad();
  if (grad.defined()) {
    bucket.slots[s].copy_(grad);
  } else {
    bucket.slots[s].zero_();
  }
  // The optimizer reads the averaged gradient in place.
  grad = bucket.slots[s];
  bucket.ready[s] = true;
  if (--bucket.pending == 0) launch_ready_buckets();
}

void GradientReducer::launch_ready_buckets() {
  const double world = static_cast<double>(communicator_.world().size);
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& bucket = buckets_[next_launch_++];
    bucket.buffer.div_(world);  // the sum of averages is the average
    trace_.launch_seconds.push_back(since_prepare());
    bucket.reduce = communicator_.all_reduce_sum_async(bucket.buffer);
  }
}

void GradientReducer::finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    trace_.backward_end_seconds = since_prepare();
    // Parameters that got no gradient this step count as zero on this rank.
    for (size_t b = 0; b < buckets_.size(); ++b) {
      Bucket& bucket = buckets_[b];
      for (size_t s = 0; s < bucket.slots.size(); ++s) {
        if (bucket.ready[s]) continue;
        bucket.slots[s].zero_();
        parameters_[bucket_params_[b][s]].mutable_grad() = bucket.slots[s];
        bucket.ready[s] = true;
        --bucket.pending;
      }
    }
    launch_ready_buckets();
  }
  const auto wait_start = std::chrono::steady_clock::now();
  for (Bucket& bucket : buckets_) bucket.reduce->wait();
  trace_.wait_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
}

}  // namespace gpulab::distributed
