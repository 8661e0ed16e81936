// gpulab evaluate: accuracy, per-class precision/recall and the confusion
// matrix of a trained model on labelled data.
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#ifdef GPULAB_WITH_OPENCV
#include "apps/gpulab/streaming_data.h"
#endif
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/infer/predictor.h"
#include "gpulab/train/confusion.h"

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

struct EvaluateFlags {
  std::string model, data, json, env = "auto";
  int64_t batch_size = 256;
  int64_t max_pixels = 0;  // 0 = data::kDefaultMaxPixels
  DataFlags data_flags;
};

// Maps the data's label indices onto the model's classes by name.
at::Tensor model_labels(const data::Dataset& ds, const std::vector<std::string>& model_classes,
                        const std::string& path) {
  std::vector<int64_t> mapping;
  for (const auto& name : ds.class_names) {
    auto it = std::find(model_classes.begin(), model_classes.end(), name);
    GPULAB_CHECK(it != model_classes.end(), ErrorKind::kInvalidArgument,
                 "data '{}' has class '{}' that the model does not know; the model's classes: {}",
                 path, name, fmt::join(model_classes, ", "));
    mapping.push_back(it - model_classes.begin());
  }
  return torch::tensor(mapping, torch::kInt64).index_select(0, ds.labels);
}

int run_evaluate(const EvaluateFlags& f) {
  core::configure_threads(0);
  const c10::Device device = core::resolve_device(core::parse_execution_environment(f.env));
  GPULAB_CHECK(f.batch_size > 0, ErrorKind::kInvalidArgument,
               "--batch-size must be positive, got {}", f.batch_size);
  infer::Predictor predictor = infer::Predictor::from_path(f.model, device);
  const auto& meta = predictor.metadata();
  DataFlags flags = f.data_flags;
  GPULAB_CHECK(flags.image_size.empty() && flags.channels == 0, ErrorKind::kInvalidArgument,
               "evaluate feeds images at the model's input ({}x{}x{}); --image-size and "
               "--channels do not apply",
               meta.config.in_channels, meta.config.height, meta.config.width);
  flags.image_size = fmt::format("{}x{}", meta.config.height, meta.config.width);
  flags.channels = static_cast<int>(meta.config.in_channels);
  flags.max_pixels = f.max_pixels;
  // Remote data is fetched once; messages and --json show its URL, redacted.
  const DataPath path = resolve_data_path(f.data, flags, /*quiet=*/false);
  data::Dataset ds;
  int64_t skipped = 0;
#ifdef GPULAB_WITH_OPENCV
  // A model trained with a resize or crop sees image folders as its
  // validation images did, so the accuracy matches training's report.
  if (predictor.preprocessing() && fs::is_directory(path.local) &&
      !data::is_idx_folder(path.local)) {
    ds = decode_image_folder(path, flags, *predictor.preprocessing(), &skipped);
    std::printf(
        "Test data: '%s' (image-folder, transformed as in validation), %lld images, "
        "%zu classes\n",
        path.source.c_str(), static_cast<long long>(ds.size()), ds.class_names.size());
    if (skipped > 0) {
      std::printf("Skipped %lld undecodable files (--skip-bad-files)\n",
                  static_cast<long long>(skipped));
    }
  }
#endif
  if (!ds.images.defined()) {
    ds = load_classification_data(path, flags, data::IdxSplit::kTest, "Test", false, &skipped);
  }
  at::Tensor labels = model_labels(ds, meta.class_names, path.source);

  at::Tensor scores = predictor.scores(ds.images, f.batch_size);
  train::ConfusionMatrix confusion(static_cast<int64_t>(meta.class_names.size()));
  confusion.add(scores.argmax(1), labels);
  std::printf("%s\n", confusion.format(meta.class_names).c_str());
  std::printf("Accuracy: %.2f%% (%lld images)\n", 100 * confusion.accuracy(),
              static_cast<long long>(confusion.total()));
  if (!f.json.empty()) {
    nlohmann::json j = confusion.to_json(meta.class_names);
    j["model"] = infer::resolve_model_path(f.model);
    j["data"] = path.source;
    j["skipped_files"] = skipped;
    core::write_file_atomic(f.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

Action add_evaluate_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("evaluate", "Accuracy, per-class precision/recall, confusion matrix");
  auto f = std::make_shared<EvaluateFlags>();
  cmd->add_option("--model", f->model, "RUN_DIR or model file")->required();
  cmd->add_option("--data", f->data, "Labelled data (IDX folders: the t10k-* files)")->required();
  cmd->add_option("--json", f->json, "Also write the metrics as JSON to FILE");
  cmd->add_option("--env", f->env, "auto | cpu | gpu (default auto)");
  cmd->add_option("--batch-size", f->batch_size, "Images per forward pass (default 256)");
  cmd->add_option("--max-pixels", f->max_pixels,
                  "Refuse images with more pixels (default 178956970, as PIL)");
  f->data_flags.add_to(*cmd);
  return [f]() { return run_evaluate(*f); };
}

}  // namespace gpulab::app
