// gpulab train: flags into a run spec, signal handling, and the run's last
// lines; the run itself is the library's (train::run_training).
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join: in ranges.h from fmt 11 on
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "apps/gpulab/cli_messages.h"
#include "apps/gpulab/commands.h"
#include "apps/gpulab/environment.h"
#include "apps/gpulab/train_spec.h"
#include "gpulab/core/duration.h"
#include "gpulab/models/registry.h"
#include "gpulab/tasks/task_registry.h"
#include "gpulab/train/train_run.h"

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) {
  g_stop_requested.store(true);
}

// The run's last lines, and the exit code: 1 when it was interrupted.
int finish(const TrainFlags& f, const train::FitResult& result, bool quiet, bool main_rank) {
  if (!quiet) {
    if (result.skipped_files > 0) {
      std::printf("Skipped %lld undecodable files (--skip-bad-files)\n",
                  static_cast<long long>(result.skipped_files));
    }
    std::printf("Waiting for data: %.1f%% of the training time\n", 100 * result.data_wait_share);
    std::printf("Stopped: %s after %lld iterations (%s); %.0f images/s on %s\n",
                result.stop_reason.c_str(), static_cast<long long>(result.iterations),
                core::format_hms(result.wall_seconds).c_str(), result.images_per_second,
                result.device.c_str());
    const auto primary = result.validation_value(result.primary_metric);
    const auto loss = result.validation_value("loss");
    if (primary && loss && result.primary_metric != "loss") {
      const bool percent = result.primary_metric.find("accuracy") != std::string::npos ||
                           result.primary_metric.find("iou") != std::string::npos;
      std::printf("Validation %s %s, loss %.4f\n", result.primary_metric.c_str(),
                  percent ? fmt::format("{:.2f}%", 100 * *primary).c_str()
                          : fmt::format("{:.4f}", *primary).c_str(),
                  *loss);
    } else if (loss) {
      std::printf("Validation loss %.4f\n", *loss);
    }
    std::printf("Model: %s\n", result.model_path.c_str());
  }
  if (result.stop_reason == "interrupted") {
    if (main_rank) {
      std::fprintf(stderr, "gpulab: interrupted; continue with: gpulab train --out %s --resume\n",
                   f.out.c_str());
    }
    return 1;
  }
  return 0;
}

int run_train(const TrainFlags& given, const CLI::App& cmd) {
  TrainFlags f = given;
  // A launcher restarting the world after a failure: continue the run.
  const char* restart = std::getenv("GPULAB_RESTART_COUNT");
  if (restart != nullptr && std::atoi(restart) > 0 && fs::exists(fs::path(f.out) / "spec.yaml")) {
    f.resume = true;
  }
  nlohmann::json spec = build_spec(f, cmd);
  const train::TrainRunOptions options = train::TrainRunOptions(f.out)
                                             .resume(f.resume)
                                             .stop_flag(&g_stop_requested)
                                             .remote(remote_access_from_environment())
                                             .origin(f.config.empty() ? "flags" : f.config)
                                             .command_line(own_command_line())
                                             .log(cli_log(stdout));
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const train::TrainRunResult result = train::run_training(std::move(spec), options);
  if (result.spawned()) return result.spawned_exit_code;
  // Only rank 0 of a verbose run speaks.
  return finish(f, result.fit, !result.verbose || result.rank != 0, result.rank == 0);
}

}  // namespace

Action add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train",
                                 "Train a network; writes RUN_DIR (spec, history, "
                                 "checkpoints, model, summary)");
  auto f = std::make_shared<TrainFlags>();
  cmd->add_option("--data", f->data,
                  "IDX folder (train-* files), image folder (one sub-folder per class), "
                  "s3://BUCKET/PREFIX or an http(s) URL list (.txt)")
      ->group("Run");
  cmd->add_option("--model", f->model,
                  "Network: " + fmt::format("{}", fmt::join(models::model_names(), ", ")) +
                      " (default basic_cnn)")
      ->group("Run");
  cmd->add_option("--out", f->out, "Run folder to create (RUN_DIR)")->required()->group("Run");
  cmd->add_option(
         "--task", f->task,
         "What the network learns: " + fmt::format("{}", fmt::join(tasks::task_names(), ", ")) +
             " (default classify)")
      ->group("Run");
  cmd->add_option("--val-data", f->val_data, "Validation data (IDX folders: the t10k-* files)")
      ->group("Run");
  cmd->add_option("--val-limit", f->val_limit, "Use only the first N validation images")
      ->group("Run");
  cmd->add_option("--weights", f->weights,
                  "Start from these weights: a gpulab model file, safetensors with PyTorch names, "
                  "TorchScript (.pt) or MatConvNet (.mat)")
      ->group("Transfer learning");
  cmd->add_option("--num-classes", f->num_classes,
                  "With --weights: replace the classifier head (fc / classifier.6) by a new one "
                  "for N classes (N = the data's class count)")
      ->group("Transfer learning");
  cmd->add_option("--freeze", f->freeze,
                  "Freeze parameters matching this glob, e.g. 'conv1.*' (repeatable; batch-norm "
                  "statistics of frozen layers stay frozen)")
      ->group("Transfer learning");
  cmd->add_option("--learn-rate-factor", f->learn_rate_factors,
                  "PATTERN=F: multiply the learn rate of matching parameters by F, e.g. "
                  "'fc.*=20' (repeatable; the last match wins; F=0 freezes)")
      ->group("Transfer learning");
  cmd->add_flag("--resume", f->resume, "Continue RUN_DIR from its last checkpoint")->group("Run");
  cmd->add_option("--config", f->config, "YAML file of options (flags win)")->group("Run");
  cmd->add_option("--nf", f->nf, "basic_cnn: filters of the first unit (default 8)")
      ->group("Model");
  cmd->add_option("--model-option", f->model_options, "Family option KEY=VALUE (repeatable)")
      ->group("Model");
  cmd->add_option("--task-option", f->task_options,
                  "The task's own option KEY=VALUE (repeatable; see docs/cli.md)")
      ->group("Run");
  cmd->add_option("--class-weights", f->class_weights,
                  "segment: none | median-frequency (MATLAB) | enet (ERFNet's 1/ln(1.10 + p)) | "
                  "FILE of one weight per class (default none)")
      ->group("Segmentation");
  for (const StyleFlag& flag : style_flags()) {
    cmd->add_option_function<std::string>(
           flag.flag,
           [f, key = std::string(flag.key)](const std::string& v) { f->style_options[key] = v; },
           flag.help)
        ->group("Style transfer");
  }
  f->data_flags.add_to(*cmd);
  f->loader_flags.add_to(*cmd);
  for (const auto& flag : train_option_flags()) {
    cmd->add_option_function<std::string>(
           flag.flag,
           [f, key = std::string(flag.key)](const std::string& v) { f->option_values[key] = v; },
           flag.help)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)  // a repeated flag: the last wins
        ->group("Training options");
  }
  cmd->add_flag("--quiet", f->quiet, "No progress table")->group("Training options");
  cmd->add_flag("--no-channels-last", f->no_channels_last, "GPU: keep NCHW layout")
      ->group("Training options");
  cmd->add_flag("--no-cuda-graphs", f->no_cuda_graphs,
                "GPU: run every step eagerly instead of replaying it as a CUDA graph")
      ->group("Training options");
  cmd->add_flag("--no-cudnn-benchmark", f->no_cudnn_benchmark,
                "GPU: use cuDNN's heuristic algorithms instead of timing them once per shape")
      ->group("Training options");
  cmd->add_flag("--scale-with-workers", f->scale_with_workers,
                "multi-gpu/parallel: multiply batch size and learn rate by the number of ranks")
      ->group("Training options");
  cmd->add_flag("--sync-batchnorm", f->sync_batchnorm,
                "multi-gpu/parallel: batch-norm statistics of the global mini-batch, not each "
                "rank's slice")
      ->group("Training options");
  return [f, cmd]() { return run_train(*f, *cmd); };
}

}  // namespace gpulab::app
