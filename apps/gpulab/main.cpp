// gpulab: train, evaluate and apply image networks. Errors become one line on
// stderr and exit code 2 (bad usage or input) or 1 (runtime failure).
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "apps/gpulab/cli_messages.h"
#include "apps/gpulab/commands.h"
#include "gpulab/core/caching_cpu_allocator.h"
#include "gpulab/core/error.h"

int main(int argc, char** argv) {
  // Reuse large CPU blocks instead of page-faulting them in every step
  // (docs/benchmarks.md); GPULAB_CPU_ALLOCATOR=default keeps LibTorch's own.
  const char* allocator = std::getenv("GPULAB_CPU_ALLOCATOR");
  if (allocator == nullptr || std::strcmp(allocator, "default") != 0) {
    gpulab::core::install_caching_cpu_allocator();
  }
  CLI::App app{"gpulab: GPU-accelerated deep learning on images"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gpulab ") + GPULAB_VERSION);
  std::vector<std::pair<CLI::App*, gpulab::app::Action>> commands;
  auto add = [&](auto add_command) {
    auto action = add_command(app);
    // The filter overload lists every subcommand, parsed or not.
    commands.emplace_back(app.get_subcommands([](CLI::App*) { return true; }).back(), action);
  };
  add(gpulab::app::add_info_command);
  add(gpulab::app::add_train_command);
  add(gpulab::app::add_evaluate_command);
  add(gpulab::app::add_predict_command);
  add(gpulab::app::add_stream_command);
  add(gpulab::app::add_export_command);
  add(gpulab::app::add_launch_command);
  add(gpulab::app::add_lab_command);
  add(gpulab::app::add_serve_command);
#ifdef GPULAB_WITH_OPENCV
  add(gpulab::app::add_bench_command);  // the streaming loader needs OpenCV
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    for (auto& [sub, action] : commands) {
      if (sub->parsed()) return action();
    }
    return 2;
  } catch (const gpulab::Error& e) {
    std::fprintf(stderr, "gpulab: error: %s\n", gpulab::app::with_cli_flags(e.what()).c_str());
    return e.exit_code();
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "gpulab: error (LibTorch): %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpulab: error: %s\n", gpulab::app::with_cli_flags(e.what()).c_str());
    return 1;
  }
}
