// What a training run ends with: why it stopped, the task's final metrics,
// throughput, peak memory; written as RUN_DIR/summary.json.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "gpulab/tasks/metrics.h"

namespace gpulab::train {

struct FitResult {
  std::string task;
  std::string stop_reason;  // "max-epochs", "validation-patience", "interrupted"
  int64_t epochs_completed = 0;
  int64_t iterations = 0;
  // The last logged global mini-batch's values (loss first, then the task's).
  tasks::MetricValues minibatch;
  // The output network's values on the validation set, when there is one.
  std::optional<tasks::MetricValues> validation;
  // The task's headline metric and the early-stopping criterion.
  std::string primary_metric;
  std::string objective_metric;
  double wall_seconds = 0;
  double train_seconds = 0;
  int64_t images_seen = 0;       // over every rank and every process of the run
  double images_per_second = 0;  // training images per second, evaluation excluded
  // Time the loop spent blocked waiting for the next batch, and its share of
  // this process's training time (0 for device-resident data).
  double data_wait_seconds = 0;
  double data_wait_share = 0;
  // Peak resident memory of this process (rank 0's), and on a CUDA device the
  // caching allocator's peak, in MiB.
  double peak_host_memory_mb = 0;
  std::optional<double> peak_device_memory_mb;
  std::string device;
  std::string model_path;
  // Data-parallel runs: ranks, backend, and the time the step waited for
  // gradient all-reduces after backward ended (communication not hidden).
  int world_size = 1;
  std::string dist_backend = "none";
  double allreduce_wait_seconds = 0;
  // "on" (single-process GPU steps replayed as CUDA graphs), else why not.
  std::string cuda_graphs;
  int64_t cuda_graph_captures = 0;  // a new learn rate makes a new capture
  int64_t cuda_graph_replays = 0;   // steps taken by replaying a graph
  // Files the data left out (skip_bad_files, missing remote objects).
  int64_t skipped_files = 0;

  // A validation value of the output network, if measured.
  std::optional<double> validation_value(const std::string& metric) const;
  // A value of the last mini-batch, if measured.
  std::optional<double> minibatch_value(const std::string& metric) const;

  // summary.json: the fields above, the mini-batch values as
  // final_minibatch_<name> and the validation values as validation_<name>
  // (null when there was no validation), NaN as null.
  nlohmann::json to_json() const;
};

}  // namespace gpulab::train
