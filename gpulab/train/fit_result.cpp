// FitResult as summary.json.
#include "gpulab/train/fit_result.h"

#include <cmath>

namespace gpulab::train {
namespace {

nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

}  // namespace

std::optional<double> FitResult::validation_value(const std::string& metric) const {
  return validation ? tasks::find_metric(*validation, metric) : std::nullopt;
}

std::optional<double> FitResult::minibatch_value(const std::string& metric) const {
  return tasks::find_metric(minibatch, metric);
}

nlohmann::json FitResult::to_json() const {
  nlohmann::json j = {{"task", task},
                      {"stop_reason", stop_reason},
                      {"epochs_completed", epochs_completed},
                      {"iterations", iterations}};
  for (const auto& [name, value] : minibatch) j["final_minibatch_" + name] = number(value);
  // Every measure has its validation key, null when there was no validation.
  for (const auto& [name, value] : minibatch) j["validation_" + name] = nlohmann::json();
  if (validation) {
    for (const auto& [name, value] : *validation) j["validation_" + name] = number(value);
  }
  j["primary_metric"] = primary_metric;
  j["objective_metric"] = objective_metric;
  j["wall_seconds"] = wall_seconds;
  j["train_seconds"] = train_seconds;
  j["images_seen"] = images_seen;
  j["images_per_second"] = images_per_second;
  j["data_wait_seconds"] = data_wait_seconds;
  j["data_wait_share"] = data_wait_share;
  j["peak_host_memory_mb"] = peak_host_memory_mb;
  j["peak_device_memory_mb"] =
      peak_device_memory_mb ? nlohmann::json(*peak_device_memory_mb) : nlohmann::json();
  j["device"] = device;
  j["world_size"] = world_size;
  j["dist_backend"] = dist_backend;
  j["allreduce_wait_seconds"] = allreduce_wait_seconds;
  j["cuda_graphs"] = cuda_graphs;
  j["cuda_graph_captures"] = cuda_graph_captures;
  j["cuda_graph_replays"] = cuda_graph_replays;
  j["skipped_files"] = skipped_files;
  j["model"] = model_path;
  return j;
}

}  // namespace gpulab::train
