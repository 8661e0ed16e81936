// Defaults of the Task interface.
#include "gpulab/tasks/task.h"

#include "gpulab/tasks/labelled_model_config.h"

#include "gpulab/core/error.h"

namespace gpulab::tasks {

data::Dataset Task::open_evaluation_data(const data::DataPath& path, const data::DataOptions&,
                                         const models::ModelMetadata&, const std::string&,
                                         const core::Log&, int64_t*) const {
  GPULAB_FAIL(ErrorKind::kUnavailable, "task '{}' has no evaluation data; cannot evaluate on '{}'",
              name(), path.source);
}

models::ModelConfig labelled_model_config(const std::string& arch, const nlohmann::json& options,
                                          const DataShape& data) {
  models::ModelConfig c;
  c.arch = arch;
  c.num_classes = data.labels.size();
  c.in_channels = data.channels;
  c.height = data.height;
  c.width = data.width;
  c.options = options;
  return c;
}

}  // namespace gpulab::tasks
