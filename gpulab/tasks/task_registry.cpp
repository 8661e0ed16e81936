// The task registry and the built-in tasks.
#include "gpulab/tasks/task_registry.h"

#include "gpulab/core/name_registry.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/tasks/segmentation.h"
#include "gpulab/tasks/style_transfer.h"

namespace gpulab::tasks {
namespace {

core::NameRegistry<TaskInfo>& registry() {
  // Never destroyed: tasks may be made from static destructors' callers.
  static core::NameRegistry<TaskInfo>* table = [] {
    auto* t = new core::NameRegistry<TaskInfo>("task");
    t->add("classify",
           {"image classification: class scores per image", "basic_cnn", [](const TaskConfig& c) {
              return std::make_unique<ClassificationTask>(c.arch, c.model_options);
            }});
    t->add("segment",
           {"semantic segmentation: a class per pixel", "erfnet", [](const TaskConfig& c) {
              return std::make_unique<SegmentationTask>(c.arch, c.model_options,
                                                        SegmentationOptions::from_json(c.options));
            }});
    t->add("style",
           {"fast neural style transfer: each image restyled as one style image",
            "transformer_net",
            [](const TaskConfig& c) {
              return std::make_unique<StyleTransferTask>(
                  c.arch, c.model_options, StyleTransferOptions::from_json(c.options));
            },
            // pytorch/examples' fast_neural_style recipe.
            {{"solver", "adam"},
             {"learn_rate", 1e-3},
             {"l2_regularization", 0.0},
             {"batch_size", 4},
             {"max_epochs", 2}}});
    return t;
  }();
  return *table;
}

}  // namespace

void register_task(const std::string& name, TaskInfo info) {
  registry().add(name, std::move(info));
}

std::string resolve_task_name(const std::string& name) {
  return registry().resolve(name);
}

std::unique_ptr<Task> create_task(const std::string& name, const TaskConfig& config) {
  return registry().get(name).factory(config);
}

std::vector<std::string> task_names() {
  return registry().names();
}

TaskInfo task_info(const std::string& name) {
  return registry().get(name);
}

}  // namespace gpulab::tasks
