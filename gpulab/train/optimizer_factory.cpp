// Mapping of MATLAB solver names and hyper-parameters to LibTorch optimizers.
#include "gpulab/train/optimizer_factory.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        std::vector<torch::Tensor> params) {
  if (o.solver() == "sgdm") {
    return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(o.learn_rate())
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

void set_learn_rate(torch::optim::Optimizer& optimizer, double learn_rate) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(learn_rate);
}

}  // namespace gpulab::train
