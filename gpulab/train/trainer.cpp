// Trainer::fit: the entry to the training loop, and summary.json.
#include "gpulab/train/trainer.h"

#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/data/resident_batch_source.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/distributed/communicator.h"
#include "gpulab/train/step_precision.h"
#include "gpulab/train/training_loop.h"

namespace gpulab::train {
namespace fs = std::filesystem;

tasks::DataShape shape_of(const data::Dataset& ds) {
  return {ds.channels(), ds.height(), ds.width(), ds.label_spec};
}

Trainer::Trainer(tasks::Task& task, TrainOptions options, std::string run_dir, nlohmann::json spec)
    : task_(task),
      options_(std::move(options)),
      run_dir_(std::move(run_dir)),
      spec_(std::move(spec)) {
  options_.validate();
}

FitResult Trainer::fit(const TrainingSet& set, bool resume) {
  detail::TrainingLoop loop(task_, options_, run_dir_, spec_, initial_, communicator_, stop_flag_,
                            set, resume);
  FitResult result = loop.run();
  if (set.count_skipped_files) result.skipped_files = set.count_skipped_files();
  // The library writes summary.json once, complete; rank 0 alone.
  if (communicator_ == nullptr || communicator_->world().is_main()) {
    core::write_file_atomic((fs::path(run_dir_) / "summary.json").string(),
                            result.to_json().dump(2) + "\n");
  }
  return result;
}

FitResult Trainer::fit(const data::Dataset& train, const data::Dataset* validation, bool resume) {
  // A rank of a data-parallel job keeps its data on its own GPU.
  const int local_rank = communicator_ != nullptr ? communicator_->world().local_rank : 0;
  const c10::Device device = core::resolve_device(
      core::parse_execution_environment(options_.execution_environment()), local_rank);
  const data::Normalization norm =
      initial_.normalization ? *initial_.normalization : data::compute_normalization(train);
  GPULAB_CHECK(static_cast<int64_t>(norm.mean.size()) == train.channels(),
               ErrorKind::kInvalidArgument,
               "the initial weights expect {}-channel images but the training data has {}; "
               "convert the images (data option channels = {})",
               norm.mean.size(), train.channels(), norm.mean.size());
  const data::ResidentBatcher batcher(train, norm, device,
                                      StepPrecision(device, options_).channels_last());
  data::ResidentBatchSource source(batcher);
  TrainingSet set;
  set.source = &source;
  set.shape = shape_of(train);
  set.normalization = norm;
  set.validation = validation;
  return fit(set, resume);
}

}  // namespace gpulab::train
