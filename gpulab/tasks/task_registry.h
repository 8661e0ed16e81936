// Tasks by name: the names used by `gpulab train --task`, lab specs and model
// files ("classify" now; "segment" and "style" next). Built-in tasks are
// registered on first use; tests and applications may add their own.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/tasks/task.h"

namespace gpulab::tasks {

// What a task is made from: the network's architecture and family options,
// and the task's own options (e.g. segmentation's class weights).
struct TaskConfig {
  std::string arch;
  nlohmann::json model_options = nlohmann::json::object();
  nlohmann::json options = nlohmann::json::object();
};

using TaskFactory = std::function<std::unique_ptr<Task>(const TaskConfig& config)>;

struct TaskInfo {
  std::string description;    // one line for --help and error messages
  std::string default_model;  // the network when a run names none
  TaskFactory factory;
  // Training options the task's recipe sets where a run gives none (keys of
  // train::TrainOptions, e.g. style transfer's {"solver": "adam", ...}).
  nlohmann::json default_options = nlohmann::json::object();
};

// Adds a task. `name` is matched case-insensitively; a name already taken
// throws Error(kInvalidArgument). Thread-safe.
void register_task(const std::string& name, TaskInfo info);

// The registered spelling of `name` (case-insensitive). Throws
// Error(kInvalidArgument) listing the valid names for an unknown one.
std::string resolve_task_name(const std::string& name);

// Makes the task `name` (see resolve_task_name).
std::unique_ptr<Task> create_task(const std::string& name, const TaskConfig& config);

// Registered names, sorted, and what each was registered with.
std::vector<std::string> task_names();
TaskInfo task_info(const std::string& name);

}  // namespace gpulab::tasks
