// gpulab lab: run a lab spec as a recorded execution, and list, show,
// follow, stop, re-run and remove executions (docs/labs.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/environment.h"
#include "gpulab/core/error.h"
#include "gpulab/core/text_table.h"
#include "gpulab/lab/execution_store.h"
#include "gpulab/lab/lab_service.h"
#include "gpulab/lab/local_runner.h"

namespace gpulab::app {
namespace {
namespace fs = std::filesystem;

std::atomic<bool> g_lab_interrupted{false};

void lab_on_interrupt(int) {
  g_lab_interrupted = true;
}

struct LabFlags {
  std::string spec_path;
  std::string id;
  std::string runner = "local";
  bool detach = false;
  bool json = false;
  bool follow = false;
  std::string state;
  std::string name;
  int limit = 100;
  int offset = 0;
  double grace_s = 10.0;
};

std::string lab_self_binary() {
  return fs::read_symlink("/proc/self/exe").string();
}

// The store of GPULAB_HOME, reconciled with the processes that still exist.
std::unique_ptr<lab::ExecutionStore> lab_open_store() {
  auto store = std::make_unique<lab::ExecutionStore>(lab::lab_home_from_environment());
  for (const auto& id : lab::reconcile_lab_executions(*store)) {
    const auto e = store->get(id);
    std::fprintf(stderr, "gpulab: execution %s is now %s: %s\n", id.c_str(),
                 lab::state_name(e.state), e.message.c_str());
  }
  return store;
}

std::string lab_time(double t) {
  if (t <= 0) return "-";
  const std::time_t s = static_cast<std::time_t>(t);
  std::tm tm{};
  ::localtime_r(&s, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

std::string lab_duration(const lab::Execution& e) {
  if (e.started_at <= 0) return "-";
  const double end = e.finished_at > 0 ? e.finished_at : lab::unix_now();
  return fmt::format("{:.1f} s", end - e.started_at);
}

lab::SubmitOptions lab_submit_options(const LabFlags& f) {
  lab::SubmitOptions options(lab_self_binary());
  options.runner(f.runner);
#ifdef GPULAB_WITH_CURL
  options.s3(remote_access_from_environment().s3);
#endif
  return options;
}

// Follows a started execution to its end (attached runs); Ctrl-C stops it.
int lab_attach(lab::ExecutionStore& store, const lab::Execution& started) {
  std::signal(SIGINT, lab_on_interrupt);
  std::signal(SIGTERM, lab_on_interrupt);
  lab::copy_log(store, started.id, stdout, true, &g_lab_interrupted);
  if (g_lab_interrupted) {
    std::fprintf(stderr, "gpulab: interrupted: stopping execution %s\n", started.id.c_str());
    lab::stop_lab_execution(store, started.id);
    lab::copy_log(store, started.id, stdout, true);
  }
  const auto e = store.get(started.id);
  std::fprintf(stderr, "gpulab: execution %s %s%s%s\n", e.id.c_str(), lab::state_name(e.state),
               e.message.empty() ? "" : ": ", e.message.c_str());
  return e.state == lab::ExecutionState::kFinished ? 0 : 1;
}

int lab_start(lab::ExecutionStore& store, const lab::LabSpec& spec, const LabFlags& f) {
  const auto e = lab::submit_execution(store, spec, lab_submit_options(f));
  // Failed before its command started (a fetch, or sbatch refused it).
  if (e.state == lab::ExecutionState::kFailed && e.started_at <= 0) {
    const bool in_fetching = e.message.rfind("fetching inputs failed", 0) == 0;
    std::fprintf(stderr, "gpulab: error: execution %s failed%s: %s\n", e.id.c_str(),
                 in_fetching ? " in `fetching`" : "", e.message.c_str());
    return 1;
  }
  std::fprintf(stderr, "gpulab: execution %s (%s) %s in %s\n", e.id.c_str(), e.name.c_str(),
               lab::state_name(e.state), store.dir(e.id).c_str());
  if (f.detach) {
    std::printf("%s\n", e.id.c_str());
    return 0;
  }
  return lab_attach(store, e);
}

int lab_run(const LabFlags& f) {
  const auto spec = lab::load_lab_spec(f.spec_path);
  auto store = lab_open_store();
  return lab_start(*store, spec, f);
}

int lab_rerun(const LabFlags& f) {
  auto store = lab_open_store();
  const auto before = store->get(f.id);
  const auto spec = lab::stored_spec(*store, f.id);
  const auto rc = lab_start(*store, spec, f);
  // Inputs that changed since: the re-run is not exact, say so.
  const auto latest = store->list(lab::ExecutionFilter().name(spec.name).limit(1));
  if (!latest.empty()) {
    for (const auto& [name, digest] : before.input_digests.items()) {
      const auto now = latest[0].input_digests.value(name, std::string());
      if (!now.empty() && now != digest.get<std::string>()) {
        std::fprintf(stderr, "gpulab: warning: input `%s` changed since %s (%s, now %s)\n",
                     name.c_str(), f.id.c_str(), digest.get<std::string>().c_str(), now.c_str());
      }
    }
  }
  return rc;
}

int lab_list(const LabFlags& f) {
  auto store = lab_open_store();
  const auto filter =
      lab::ExecutionFilter().state(f.state).name(f.name).limit(f.limit).offset(f.offset);
  const auto rows = store->list(filter);
  if (f.json) {
    nlohmann::json j = {{"executions", nlohmann::json::array()},
                        {"total", store->count(filter)},
                        {"limit", f.limit},
                        {"offset", f.offset}};
    for (const auto& e : rows) j["executions"].push_back(e.to_json());
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  core::TextTable table({"ID", "NAME", "STATE", "CREATED", "DURATION", "EXIT", "RUNNER"});
  for (const auto& e : rows) {
    table.add_row({e.id, e.name, lab::state_name(e.state), lab_time(e.created_at), lab_duration(e),
                   e.exit_code ? std::to_string(*e.exit_code) : "-", e.runner});
  }
  std::printf("%s", table.render().c_str());
  return 0;
}

int lab_show(const LabFlags& f) {
  auto store = lab_open_store();
  const auto e = store->get(f.id);
  nlohmann::json j = e.to_json();
  j["dir"] = store->dir(e.id);
  j["spec"] = lab::lab_spec_to_json(lab::stored_spec(*store, e.id));
  if (f.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("id:          %s\nname:        %s\nstate:       %s\n", e.id.c_str(), e.name.c_str(),
              lab::state_name(e.state));
  std::printf("created:     %s\nstarted:     %s\nfinished:    %s\nduration:    %s\n",
              lab_time(e.created_at).c_str(), lab_time(e.started_at).c_str(),
              lab_time(e.finished_at).c_str(), lab_duration(e).c_str());
  std::printf("exit code:   %s\n", e.exit_code ? std::to_string(*e.exit_code).c_str() : "-");
  if (!e.message.empty()) std::printf("message:     %s\n", e.message.c_str());
  std::printf("runner:      %s on %s (pid %lld, command pid %lld)\n", e.runner.c_str(),
              e.host.c_str(), static_cast<long long>(e.pid), static_cast<long long>(e.child_pid));
  std::printf("hardware:    %s\nspec hash:   %s\ngpulab:      %s\nfolder:      %s\n",
              e.hardware.c_str(), e.spec_hash.c_str(), e.gpulab_version.c_str(),
              store->dir(e.id).c_str());
  for (const auto& [name, digest] : e.input_digests.items()) {
    std::printf("input:       %s %s\n", name.c_str(), digest.get<std::string>().c_str());
  }
  return 0;
}

int lab_outputs(const LabFlags& f) {
  auto store = lab_open_store();
  const auto files = lab::list_outputs(*store, f.id);
  if (f.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& o : files) j.push_back({{"path", o.path}, {"bytes", o.bytes}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  for (const auto& o : files) {
    std::printf("%12lld  %s\n", static_cast<long long>(o.bytes), o.path.c_str());
  }
  std::fprintf(stderr, "gpulab: %zu file(s) in %s/outputs\n", files.size(),
               store->dir(f.id).c_str());
  return 0;
}

}  // namespace

Action add_lab_command(CLI::App& app) {
  auto* lab = app.add_subcommand(
      "lab", "Run lab specs as recorded executions (GPULAB_HOME, default ~/.local/share/gpulab)");
  lab->require_subcommand(1);
  auto f = std::make_shared<LabFlags>();
  auto action = std::make_shared<std::function<int()>>();
  auto on = [action](CLI::App* sub, std::function<int()> run) {
    sub->callback([action, run] { *action = run; });
  };

  auto* run = lab->add_subcommand("run", "Start an execution of SPEC.yaml and follow its log");
  run->add_option("spec", f->spec_path, "Lab spec (YAML, docs/labs.md)")->required();
  run->add_option("--runner", f->runner,
                  "Where it runs: local (a process on this host) or slurm (an sbatch job)")
      ->check(CLI::IsMember({"local", "slurm"}))
      ->capture_default_str();
  run->add_flag("--detach", f->detach,
                "Print the execution id and return once it runs; it survives this command");
  on(run, [f] { return lab_run(*f); });

  auto* list = lab->add_subcommand("list", "Executions, newest first");
  list->add_option("--state", f->state, "Only this state")
      ->check(CLI::IsMember({"pending", "fetching", "running", "finished", "failed", "stopped"}));
  list->add_option("--name", f->name, "Only executions of the spec with this name");
  list->add_option("--limit", f->limit, "Rows per page (1..1000)")->capture_default_str();
  list->add_option("--offset", f->offset, "Rows skipped")->capture_default_str();
  list->add_flag("--json", f->json, "JSON: {executions, total, limit, offset}");
  on(list, [f] { return lab_list(*f); });

  auto* show = lab->add_subcommand("show", "One execution: state, times, exit code, inputs");
  show->add_option("id", f->id, "Execution id")->required();
  show->add_flag("--json", f->json, "As JSON (with the stored spec)");
  on(show, [f] { return lab_show(*f); });

  auto* logs = lab->add_subcommand("logs", "Print an execution's log");
  logs->add_option("id", f->id, "Execution id")->required();
  logs->add_flag("--follow,-f", f->follow, "Keep printing until the execution ends");
  on(logs, [f] {
    auto store = lab_open_store();
    lab::copy_log(*store, f->id, stdout, f->follow);
    return 0;
  });

  auto* outputs = lab->add_subcommand("outputs", "List an execution's output files (bytes, path)");
  outputs->add_option("id", f->id, "Execution id")->required();
  outputs->add_flag("--json", f->json, "As JSON [{path, bytes}]");
  on(outputs, [f] { return lab_outputs(*f); });

  auto* stop = lab->add_subcommand(
      "stop", "Stop an execution: SIGTERM, SIGKILL after --grace (slurm: scancel)");
  stop->add_option("id", f->id, "Execution id")->required();
  stop->add_option("--grace", f->grace_s, "Seconds between SIGTERM and SIGKILL")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  on(stop, [f] {
    auto store = lab_open_store();
    const bool stopped =
        lab::stop_lab_execution(*store, f->id, lab::StopOptions().grace_s(f->grace_s));
    const auto e = store->get(f->id);
    std::printf("%s %s\n", e.id.c_str(), lab::state_name(e.state));
    if (!stopped) std::fprintf(stderr, "gpulab: execution %s had already ended\n", f->id.c_str());
    return 0;
  });

  auto* rerun = lab->add_subcommand("rerun", "Run an execution's stored spec again");
  rerun->add_option("id", f->id, "Execution id")->required();
  rerun
      ->add_option("--runner", f->runner,
                   "Where it runs: local (a process on this host) or slurm (an sbatch job)")
      ->check(CLI::IsMember({"local", "slurm"}))
      ->capture_default_str();
  rerun->add_flag("--detach", f->detach, "Return once it runs");
  on(rerun, [f] { return lab_rerun(*f); });

  auto* rm = lab->add_subcommand("rm", "Delete an ended execution's row and folder");
  rm->add_option("id", f->id, "Execution id")->required();
  on(rm, [f] {
    auto store = lab_open_store();
    const auto e = store->get(f->id);
    GPULAB_CHECK(lab::is_terminal(e.state), ErrorKind::kInvalidArgument,
                 "execution {} is {}: stop it first (gpulab lab stop {})", e.id,
                 lab::state_name(e.state), e.id);
    store->remove(e.id);
    std::printf("removed %s\n", e.id.c_str());
    return 0;
  });

  // Internal: started by `lab run`; waits for the command and records it.
  auto* supervise = lab->add_subcommand("supervise", "");
  supervise->add_option("id", f->id, "Execution id")->required();
  on(supervise, [f] {
    lab::ExecutionStore store(lab::lab_home_from_environment());
    // The command's exit code (a Slurm job's ExitCode then shows it too).
    return std::min(lab::supervise_execution(store, f->id, lab_self_binary()), 255);
  });

  return [action] { return (*action)(); };
}

}  // namespace gpulab::app
