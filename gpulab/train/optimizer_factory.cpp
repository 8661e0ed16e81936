// Mapping of MATLAB solver names and hyper-parameters to LibTorch optimizers.
#include "gpulab/train/optimizer_factory.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/train/foreach_sgd.h"

namespace gpulab::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        std::vector<torch::Tensor> params) {
  if (o.solver() == "sgdm") {
    return std::make_unique<ForeachSGD>(params, torch::optim::SGDOptions(o.learn_rate())
                                                    .momentum(o.momentum())
                                                    .weight_decay(o.l2_regularization()));
  }
  if (o.solver() == "adam") {
    return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(o.learn_rate())
                                                            .betas({o.beta1(), o.beta2()})
                                                            .eps(o.epsilon())
                                                            .weight_decay(o.l2_regularization()));
  }
  if (o.solver() == "rmsprop") {
    return std::make_unique<torch::optim::RMSprop>(params,
                                                   torch::optim::RMSpropOptions(o.learn_rate())
                                                       .alpha(o.rmsprop_decay())
                                                       .eps(o.epsilon())
                                                       .weight_decay(o.l2_regularization()));
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument, "unknown solver '{}'; valid: sgdm, adam, rmsprop",
              o.solver());
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const TrainOptions& options, const std::vector<std::vector<torch::Tensor>>& groups) {
  GPULAB_CHECK(!groups.empty(), ErrorKind::kInternal, "make_optimizer: no parameter groups");
  auto optimizer = make_optimizer(options, groups.front());
  for (size_t g = 1; g < groups.size(); ++g) {
    optimizer->add_param_group(torch::optim::OptimizerParamGroup(groups[g]));
  }
  return optimizer;
}

void set_learn_rate(torch::optim::Optimizer& optimizer, double learn_rate,
                    const std::vector<double>& factors) {
  auto& groups = optimizer.param_groups();
  GPULAB_CHECK(factors.empty() || factors.size() == groups.size(), ErrorKind::kInternal,
               "set_learn_rate: {} factors for {} parameter groups", factors.size(), groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    groups[g].options().set_lr(learn_rate * (factors.empty() ? 1.0 : factors[g]));
  }
}

}  // namespace gpulab::train
