// gpulab export: a trained (or imported) network as safetensors or TorchScript.
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#include "gpulab/core/error.h"
#include "gpulab/infer/predictor.h"
#include "gpulab/models/export.h"

namespace gpulab::app {
namespace {

struct ExportFlags {
  std::string model, weights, format, out;
  InputFlags input_flags;
};

int run_export(const ExportFlags& f) {
  GPULAB_CHECK(f.format == "safetensors" || f.format == "torchscript", ErrorKind::kInvalidArgument,
               "--format must be safetensors or torchscript, got '{}'", f.format);
  models::LoadedModel model = infer::load_model(f.model, f.weights, f.input_flags.options());
  if (f.format == "safetensors") {
    models::export_safetensors(model, f.out);
  } else {
    models::export_torchscript(model, f.out);
  }
  const auto& c = model.metadata.config;
  std::printf("Wrote %s (%s, %s, input %lldx%lldx%lld normalised, %lld classes)\n", f.out.c_str(),
              f.format.c_str(), c.arch.c_str(), static_cast<long long>(c.in_channels),
              static_cast<long long>(c.height), static_cast<long long>(c.width),
              static_cast<long long>(c.num_classes));
  return 0;
}

}  // namespace

Action add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "Write a network as safetensors or TorchScript for PyTorch and other tools");
  auto f = std::make_shared<ExportFlags>();
  cmd->add_option("--model", f->model,
                  "RUN_DIR or model file; with --weights, the architecture (e.g. vgg19)")
      ->required();
  cmd->add_option("--weights", f->weights,
                  "Imported weights to convert (safetensors, TorchScript .pt, MatConvNet .mat)");
  cmd->add_option("--format", f->format,
                  "safetensors (weights by PyTorch names + metadata) | torchscript (traced "
                  "forward, runs with torch.jit.load)")
      ->required();
  cmd->add_option("--out", f->out, "File to write (atomically)")->required();
  f->input_flags.add_to(*cmd);
  return [f]() { return run_export(*f); };
}

}  // namespace gpulab::app
