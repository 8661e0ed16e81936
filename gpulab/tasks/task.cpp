// Defaults of the Task interface.
#include "gpulab/tasks/task.h"

#include "gpulab/core/error.h"

namespace gpulab::tasks {

data::Dataset Task::open_evaluation_data(const data::DataPath& path, const data::DataOptions&,
                                         const models::ModelMetadata&, const std::string&,
                                         const core::Log&, int64_t*) const {
  GPULAB_FAIL(ErrorKind::kUnavailable, "task '{}' has no evaluation data; cannot evaluate on '{}'",
              name(), path.source);
}

}  // namespace gpulab::tasks
