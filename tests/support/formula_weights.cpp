// The parity fixtures' formula weights and digest comparison.
#include "tests/support/formula_weights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gpulab/core/text.h"
#include "gpulab/models/network.h"

namespace gpulab::testing {

torch::Tensor formula_hash_values(int64_t n, int64_t k) {
  auto x = torch::sin(torch::arange(n, torch::kFloat64) * 0.1 + 0.7 * k) * 43758.5453;
  return (x - torch::floor(x)) * 2 - 1;
}

double fill_formula_weights(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  int64_t k = 0;
  for (auto& [name, target] : models::state_dict(net)) {  // std::map: sorted by name
    const int64_t index = k++;
    if (core::ends_with(name, "num_batches_tracked")) {
      target.zero_();
      continue;
    }
    const int64_t n = target.numel();
    auto base = formula_hash_values(n, index);
    torch::Tensor v;
    if (core::ends_with(name, "running_var")) {
      v = 1 + 0.5 * base * base;
    } else if (core::ends_with(name, "running_mean")) {
      v = 0.1 * base;
    } else if (target.dim() >= 2) {
      v = base * std::sqrt(6.0 / static_cast<double>(n / target.size(0)));
    } else if (core::ends_with(name, "weight")) {
      v = 1 + 0.1 * base;
    } else {
      v = 0.05 * base;
    }
    auto f = v.to(torch::kFloat32).reshape(target.sizes());
    sum += f.to(torch::kFloat64).sum().item<double>();
    target.copy_(f);
  }
  return sum;
}

void expect_matches_digest(const torch::Tensor& out, const nlohmann::json& digest,
                           const std::string& per, const std::string& what) {
  ASSERT_EQ(std::vector<int64_t>(out.sizes().begin(), out.sizes().end()),
            digest.at("shape").get<std::vector<int64_t>>())
      << what;
  const torch::Tensor o = out.to(torch::kFloat64);
  const torch::Tensor flat = o.flatten();
  double scale = 1.0, worst = 0.0;
  for (const auto& s : digest.at("samples")) scale = std::max(scale, std::abs(s[1].get<double>()));
  for (const auto& s : digest.at("samples")) {
    const double value = flat[s[0].get<int64_t>()].item<double>();
    worst = std::max(worst, std::abs(value - s[1].get<double>()));
  }
  EXPECT_LT(worst / scale, 1e-4) << what << ": largest deviation " << worst << ", scale " << scale;
  const torch::Tensor sums = o.sum({0, 2, 3});
  const auto reference = digest.at("sum_by_" + per).get<std::vector<double>>();
  const auto magnitude = digest.at("abs_sum_by_" + per).get<std::vector<double>>();
  ASSERT_EQ(sums.size(0), static_cast<int64_t>(reference.size())) << what;
  for (size_t c = 0; c < reference.size(); ++c) {
    EXPECT_NEAR(sums[c].item<double>(), reference[c], 1e-4 * std::max(1.0, magnitude[c]))
        << what << ", " << per << " " << c;
  }
}

}  // namespace gpulab::testing
