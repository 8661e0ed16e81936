// Glob rules -> optimizer parameter groups and frozen layers.
#include "gpulab/train/parameter_groups.h"

#include <fnmatch.h>
#include <torch/torch.h>

#include <map>

#include "gpulab/core/error.h"
#include "gpulab/models/sync_batch_norm.h"

namespace gpulab::train {
namespace {

bool matches(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

// LibTorch's and gpulab's batch-norm layers, and any other module holding
// running statistics (a TorchScript archive's BatchNorm2d, mirrored by
// models::TorchScriptNetwork).
bool is_batchnorm(const torch::nn::Module& m) {
  if (m.as<models::SyncBatchNorm2d>() || m.as<torch::nn::BatchNorm2d>() ||
      m.as<torch::nn::BatchNorm1d>()) {
    return true;
  }
  const auto buffers = m.named_buffers(/*recurse=*/false);
  return buffers.contains("running_mean") && buffers.contains("running_var");
}

}  // namespace

LearnRateFactor parse_learn_rate_factor(const std::string& text) {
  const auto eq = text.rfind('=');
  GPULAB_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < text.size(),
               ErrorKind::kInvalidArgument,
               "learn-rate factor must be PATTERN=F (e.g. 'fc.*=20'), got '{}'", text);
  LearnRateFactor rule;
  rule.pattern = text.substr(0, eq);
  try {
    size_t used = 0;
    rule.factor = std::stod(text.substr(eq + 1), &used);
    GPULAB_CHECK(used == text.size() - eq - 1, ErrorKind::kInvalidArgument, "trailing text");
  } catch (const std::exception&) {
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "learn-rate factor in '{}' is not a number", text);
  }
  GPULAB_CHECK(rule.factor >= 0 && std::isfinite(rule.factor), ErrorKind::kInvalidArgument,
               "learn-rate factor in '{}' must be >= 0 (0 freezes)", text);
  return rule;
}

std::vector<double> ParameterPlan::factors() const {
  std::vector<double> out;
  for (const auto& g : groups) out.push_back(g.factor);
  return out;
}

std::vector<torch::Tensor> ParameterPlan::trainable() const {
  std::vector<torch::Tensor> out;
  for (const auto& g : groups) out.insert(out.end(), g.parameters.begin(), g.parameters.end());
  return out;
}

ParameterPlan plan_parameters(torch::nn::Module& model, const std::vector<LearnRateFactor>& rules) {
  ParameterPlan plan;
  std::vector<bool> used(rules.size(), false);
  std::map<double, size_t> group_of_factor;
  std::vector<std::string> all_names;
  for (auto& p : model.named_parameters(/*recurse=*/true)) {
    all_names.push_back(p.key());
    double factor = 1.0;
    for (size_t r = 0; r < rules.size(); ++r) {
      if (matches(rules[r].pattern, p.key())) {
        factor = rules[r].factor;
        used[r] = true;
      }
    }
    if (factor == 0 || !p.value().requires_grad()) {  // frozen by a rule or by the network
      p.value().set_requires_grad(false);
      plan.frozen.push_back(p.key());
      continue;
    }
    auto [it, inserted] = group_of_factor.emplace(factor, plan.groups.size());
    if (inserted) plan.groups.push_back({factor, {}, {}});
    plan.groups[it->second].parameters.push_back(p.value());
    plan.groups[it->second].names.push_back(p.key());
  }
  for (size_t r = 0; r < rules.size(); ++r) {
    GPULAB_CHECK(used[r], ErrorKind::kInvalidArgument,
                 "pattern '{}' matches no parameter of the network; names look like: {}",
                 rules[r].pattern,
                 fmt::join(all_names.begin(),
                           all_names.begin() + std::min<size_t>(all_names.size(), 6), ", "));
  }
  GPULAB_CHECK(!plan.groups.empty(), ErrorKind::kInvalidArgument,
               "every parameter is frozen; nothing would be trained");
  for (auto& child : model.modules(/*include_self=*/false)) {
    if (!is_batchnorm(*child)) continue;
    const auto params = child->parameters(/*recurse=*/false);
    const bool all_frozen =
        !params.empty() &&
        std::none_of(params.begin(), params.end(), [](const auto& p) { return p.requires_grad(); });
    if (all_frozen) plan.frozen_batchnorm.push_back(child);
  }
  return plan;
}

void set_training_mode(torch::nn::Module& model, bool on, const ParameterPlan& plan) {
  model.train(on);
  for (const auto& bn : plan.frozen_batchnorm) bn->eval();
}

}  // namespace gpulab::train
