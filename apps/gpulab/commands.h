// Subcommand registration: each adds itself to the CLI and returns the action
// to run once parsing succeeded.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace gpulab::app {

using Action = std::function<int()>;

Action add_info_command(CLI::App& app);
Action add_train_command(CLI::App& app);
Action add_evaluate_command(CLI::App& app);
Action add_predict_command(CLI::App& app);
Action add_export_command(CLI::App& app);
Action add_launch_command(CLI::App& app);
Action add_bench_command(CLI::App& app);
Action add_stream_command(CLI::App& app);
Action add_lab_command(CLI::App& app);
Action add_serve_command(CLI::App& app);

}  // namespace gpulab::app
