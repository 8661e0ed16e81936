// gpulab launch: N local ranks of a command (CPU ranks talk over Gloo, GPU
// ranks over NCCL), like torchrun on one machine.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "apps/gpulab/commands.h"
#include "gpulab/distributed/local_launcher.h"

namespace gpulab::app {
namespace {

struct LaunchFlags {
  int processes = 1;
  int max_restarts = 0;
  int master_port = 0;
  double grace_seconds = 10;
  std::vector<std::string> command;
};

int run_launch(const LaunchFlags& f) {
  const distributed::LaunchResult result =
      distributed::launch_local(f.command, distributed::LaunchOptions(f.processes)
                                        .max_restarts(f.max_restarts)
                                        .master_port(f.master_port)
                                        .grace_seconds(f.grace_seconds));
  if (result.exit_code != 0) {
    if (result.failed_rank >= 0) {
      std::fprintf(stderr, "gpulab launch: %s\n", result.headline(f.processes).c_str());
    } else {
      std::fprintf(stderr, "gpulab launch: stopped by a signal; ranks ended with exit code %d\n",
                   result.exit_code);
    }
  } else if (result.restarts > 0) {
    std::fprintf(stderr, "gpulab launch: completed after %d restart%s\n", result.restarts,
                 result.restarts == 1 ? "" : "s");
  }
  return result.exit_code;
}

}  // namespace

Action add_launch_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "launch",
      "Run N local ranks of a command: gpulab launch -n 2 -- gpulab train --env parallel ...");
  auto f = std::make_shared<LaunchFlags>();
  cmd->add_option("-n,--nproc", f->processes, "Ranks to start on this machine")->required();
  cmd->add_option("--max-restarts", f->max_restarts,
                  "Restart every rank up to K times after a failure; train resumes from the "
                  "last checkpoint (default 0)");
  cmd->add_option("--master-port", f->master_port,
                  "TCP port of the rendezvous store (default: a free port)");
  cmd->add_option("--grace-seconds", f->grace_seconds,
                  "After a rank fails: seconds the others get to stop before SIGKILL (default 10)");
  cmd->add_option("command", f->command, "The command each rank runs (after --)")->required();
  return [f]() { return run_launch(*f); };
}

}  // namespace gpulab::app
