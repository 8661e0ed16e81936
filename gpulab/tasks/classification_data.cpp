// Classification's data: labelled IDX or image folders for training, and the
// same kinds mapped onto a trained model's classes for evaluation.
#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/data/inference_transforms.h"
#include "gpulab/tasks/classification.h"

namespace gpulab::tasks {
namespace fs = std::filesystem;
namespace {

// The data's class indices as the model's, matched by name.
at::Tensor model_targets(const data::Dataset& ds, const std::vector<std::string>& model_classes,
                         const std::string& source) {
  std::vector<int64_t> mapping;
  for (const auto& name : ds.label_spec.names) {
    auto it = std::find(model_classes.begin(), model_classes.end(), name);
    GPULAB_CHECK(it != model_classes.end(), ErrorKind::kInvalidArgument,
                 "data '{}' has class '{}' that the model does not know; the model's classes: {}",
                 source, name, fmt::join(model_classes, ", "));
    mapping.push_back(it - model_classes.begin());
  }
  return torch::tensor(mapping, torch::kInt64).index_select(0, ds.targets);
}

}  // namespace

data::TrainingData ClassificationTask::open_training_data(const data::DataRequest& request) const {
  return data::open_image_training_data(request, /*labelled=*/true);
}

data::Dataset ClassificationTask::open_evaluation_data(
    const data::DataPath& path, const data::DataOptions& given, const models::ModelMetadata& model,
    const std::string& index_cache_dir, const core::Log& log, int64_t* skipped_files) const {
  GPULAB_CHECK(given.height == 0 && given.channels == 0, ErrorKind::kInvalidArgument,
               "evaluation feeds images at the model's input ({}x{}x{}); the data options "
               "image_size and channels do not apply",
               model.config.in_channels, model.config.height, model.config.width);
  data::DataOptions options = given;
  options.height = static_cast<int>(model.config.height);
  options.width = static_cast<int>(model.config.width);
  options.channels = static_cast<int>(model.config.in_channels);
  data::Dataset ds;
  int64_t skipped = 0;
#ifdef GPULAB_WITH_OPENCV
  // A model trained with a resize or crop sees image folders as its
  // validation images did, so the accuracy matches training's report.
  const auto preprocessing =
      model.training.is_object() && model.training.contains("data_options")
          ? data::inference_transforms(model.training["data_options"], options.channels,
                                       options.height, options.width)
          : std::nullopt;
  if (preprocessing && fs::is_directory(path.local) && !data::is_idx_folder(path.local)) {
    ds = data::decode_image_folder(path, options, *preprocessing, index_cache_dir, &skipped);
    log.line(fmt::format(
        "Test data: '{}' (image-folder, transformed as in validation), {} images, {} classes",
        path.source, ds.size(), ds.label_spec.size()));
    if (skipped > 0)
      log.line(fmt::format("Skipped {} undecodable files (skip_bad_files)", skipped));
  }
#endif
  if (!ds.images.defined()) {
    ds = data::load_image_dataset(path, options, data::IdxSplit::kTest, "Test", log, &skipped);
  }
  if (skipped_files != nullptr) *skipped_files = skipped + path.missing_files;
  ds.targets = model_targets(ds, model.class_names(), path.source);
  ds.label_spec = data::LabelSpec::from_json(model.labels, path.source);
  return ds;
}

}  // namespace gpulab::tasks
