// gpulab evaluate: a trained model's task metrics on labelled data (for
// classification: accuracy, per-class precision/recall and the confusion
// matrix), through the same Predictor and Metrics as inference and
// validation.
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include "apps/gpulab/cli_messages.h"
#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#include "apps/gpulab/environment.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/data/data_path.h"
#include "gpulab/infer/predictor.h"
#include "gpulab/tasks/task_registry.h"

namespace gpulab::app {
namespace {

struct EvaluateFlags {
  std::string model, data, json, env = "auto";
  int64_t batch_size = 256;
  int64_t max_pixels = 0;  // 0 = data::kDefaultMaxPixels
  DataFlags data_flags;
};

// The task that trained the model, set up for its labels on `device`.
std::unique_ptr<tasks::Task> task_of(const infer::Predictor& predictor) {
  const models::ModelMetadata& meta = predictor.metadata();
  tasks::TaskConfig config{meta.config.arch, meta.config.options,
                           meta.training.is_object()
                               ? meta.training.value("task_options", nlohmann::json::object())
                               : nlohmann::json::object()};
  std::unique_ptr<tasks::Task> task = tasks::create_task(meta.task, config);
  tasks::DataShape shape{meta.config.in_channels, meta.config.height, meta.config.width,
                         data::LabelSpec::from_json(meta.labels, "the model file")};
  task->setup({predictor.device(), shape, {meta.mean, meta.std}, meta.task_metadata});
  return task;
}

int run_evaluate(const EvaluateFlags& f, const CLI::App& cmd) {
  core::configure_threads(0);
  const c10::Device device = core::resolve_device(core::parse_execution_environment(f.env));
  GPULAB_CHECK(f.batch_size > 0, ErrorKind::kInvalidArgument,
               "--batch-size must be positive, got {}", f.batch_size);
  const infer::Predictor predictor = infer::Predictor::from_path(f.model, device);
  std::unique_ptr<tasks::Task> task = task_of(predictor);
  nlohmann::json data_options = nlohmann::json::object();
  f.data_flags.to_spec(data_options, cmd);
  if (f.max_pixels > 0) data_options["max_pixels"] = f.max_pixels;
  const data::DataOptions options = data::DataOptions::from_json(data_options, "flags");
  const data::RemoteAccess remote = remote_access_from_environment();
  const core::Log log = cli_log(stdout);
  // Remote data is fetched once; messages and --json show its URL, redacted.
  const data::DataPath path = data::resolve_data_path(f.data, options, remote, log);
  int64_t skipped = 0;
  const data::Dataset ds = task->open_evaluation_data(path, options, predictor.metadata(),
                                                      remote.index_cache_dir, log, &skipped);
  auto metrics = task->metrics(tasks::Stage::kEvaluation, device);
  for (int64_t b = 0; b < ds.size(); b += f.batch_size) {
    const int64_t e = std::min(ds.size(), b + f.batch_size);
    data::Batch batch{predictor.normalise(ds.images.slice(0, b, e)),
                      ds.targets.slice(0, b, e).to(device)};
    const at::Tensor output = predictor.forward_normalised(batch.input);
    metrics->update(output, batch, task->loss(output, batch));
  }
  std::printf("%s\n", metrics->format_report().c_str());
  const tasks::MetricValues values = metrics->values();
  const std::string primary = task->primary_metric();
  if (const auto v = tasks::find_metric(values, primary)) {
    std::printf("%c%s: %.2f%% (%lld images)\n", static_cast<char>(std::toupper(primary[0])),
                primary.substr(1).c_str(), 100 * *v, static_cast<long long>(ds.size()));
  }
  if (!f.json.empty()) {
    nlohmann::json j = metrics->report();
    j["task"] = task->name();
    j["model"] = infer::resolve_model_path(f.model);
    j["data"] = path.source;
    j["skipped_files"] = skipped;
    core::write_file_atomic(f.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

Action add_evaluate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("evaluate", "A trained model's metrics on labelled data");
  auto f = std::make_shared<EvaluateFlags>();
  cmd->add_option("--model", f->model, "RUN_DIR or model file")->required();
  cmd->add_option("--data", f->data, "Labelled data (IDX folders: the t10k-* files)")->required();
  cmd->add_option("--json", f->json, "Also write the metrics as JSON to FILE");
  cmd->add_option("--env", f->env, "auto | cpu | gpu (default auto)");
  cmd->add_option("--batch-size", f->batch_size, "Images per forward pass (default 256)");
  cmd->add_option("--max-pixels", f->max_pixels,
                  "Refuse images with more pixels (default 178956970, as PIL)");
  f->data_flags.add_to(*cmd);
  return [f, cmd]() { return run_evaluate(*f, *cmd); };
}

}  // namespace gpulab::app
