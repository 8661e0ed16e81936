// Defaults of the Metrics interface and the shared loss sums.
#include "gpulab/tasks/metrics.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace gpulab::tasks {

std::optional<double> find_metric(const MetricValues& values, const std::string& name) {
  for (const auto& [key, value] : values) {
    if (key == name) return value;
  }
  return std::nullopt;
}

nlohmann::json Metrics::report() const {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, value] : values()) {
    metrics[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json();
  }
  return {{"metrics", metrics}};
}

std::string Metrics::format_report() const {
  std::string out;
  for (const auto& [name, value] : values()) out += fmt::format("{}: {:.6g}\n", name, value);
  return out;
}

void add_loss_sums(at::Tensor& sums, const LossTerms& loss, int64_t samples) {
  if (samples == 0) return;
  sums.narrow(0, 0, 1).add_(loss.total.detach().to(torch::kFloat64) * samples);
  sums.narrow(0, 1, 1).add_(static_cast<double>(samples));
}

double mean_loss(const at::Tensor& cpu_sums) {
  const double* s = cpu_sums.data_ptr<double>();
  return s[1] > 0 ? s[0] / s[1] : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace gpulab::tasks
