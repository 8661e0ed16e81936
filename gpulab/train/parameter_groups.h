// Per-parameter learn rates for transfer learning: glob patterns over
// parameter names with a factor (MATLAB's WeightLearnRateFactor and
// BiasLearnRateFactor), 0 freezing the parameter and its batch-norm statistics.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace gpulab::train {

// "fc.*=20": parameters whose names match the glob `pattern` ('*' and '?'
// also match dots) get `factor` times the learn rate.
struct LearnRateFactor {
  std::string pattern;
  double factor = 1.0;
};

// Parses "PATTERN=F" with F >= 0. Throws Error(kInvalidArgument).
LearnRateFactor parse_learn_rate_factor(const std::string& text);

struct ParameterGroup {
  double factor = 1.0;
  std::vector<torch::Tensor> parameters;
  std::vector<std::string> names;
};

struct ParameterPlan {
  std::vector<ParameterGroup> groups;  // trainable, one per distinct factor > 0
  std::vector<std::string> frozen;     // parameters with factor 0
  // Batch-norm layers whose affine parameters are all frozen: their running
  // statistics stay frozen too (they stay in eval mode while training).
  std::vector<std::shared_ptr<torch::nn::Module>> frozen_batchnorm;

  std::vector<double> factors() const;
  std::vector<torch::Tensor> trainable() const;
};

// Every parameter takes the factor of the last rule matching its name, else 1;
// frozen parameters get requires_grad(false). Throws Error(kInvalidArgument)
// for a rule that matches no parameter (naming a few that exist) or when
// every parameter is frozen.
ParameterPlan plan_parameters(torch::nn::Module& model, const std::vector<LearnRateFactor>& rules);

// model.train(on), keeping the plan's frozen batch-norm layers in eval mode.
void set_training_mode(torch::nn::Module& model, bool on, const ParameterPlan& plan);

}  // namespace gpulab::train
