// Submitting, re-running, following and listing executions.
#include "gpulab/lab/lab_service.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/lab/local_runner.h"
#include "gpulab/lab/slurm_runner.h"

namespace gpulab::lab {
namespace fs = std::filesystem;

namespace {

// After the inputs are fetched: `pending` while sbatch runs and the job
// queues (the row's pid, the submitter, answers for it until the job id is
// recorded); the supervisor in the job marks it running.
Execution submit_to_slurm(ExecutionStore& store, const LabSpec& spec, const std::string& id,
                          const SubmitOptions& options) {
  store.transition(id, ExecutionState::kPending);
  std::string job;
  try {
    job = submit_slurm_job(store, id, spec, options.gpulab_binary());
  } catch (const Error& error) {
    const std::string why = std::string("submitting to Slurm failed: ") + error.what();
    core::append_line_durable(store.dir(id) + "/log",
                              log_timestamp() + " [gpulab] execution " + id + " failed: " + why);
    store.transition(id, ExecutionState::kFailed, why);
    return store.get(id);
  }
  store.set_job_id(id, job);
  core::append_line_durable(store.dir(id) + "/log", log_timestamp() + " [gpulab] execution " + id +
                                                        " submitted as Slurm job " + job);
  if (store.get(id).stop_requested) stop_slurm_execution(store, id, StopOptions().grace_s(5.0));
  // A job on an idle node starts within a second or two: wait briefly so the
  // caller sees it running; a queued one is returned pending.
  Execution e = store.get(id);
  for (int i = 0; i < 100 && e.state == ExecutionState::kPending; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    e = store.get(id);
  }
  return e;
}

}  // namespace

Execution submit_execution(ExecutionStore& store, const LabSpec& spec,
                           const SubmitOptions& options) {
  GPULAB_CHECK(options.runner() == "local" || options.runner() == "slurm",
               ErrorKind::kInvalidArgument, "unknown runner '{}': expected local or slurm",
               options.runner());
  for (const auto& name : spec.env) {
    GPULAB_CHECK(std::getenv(name.c_str()) != nullptr, ErrorKind::kInvalidArgument,
                 "lab `{}`: `env` names {}, which is not set in the submitting environment: "
                 "export it before gpulab lab run",
                 spec.name, name);
  }
  for (const auto& m : spec.mounts) {
    GPULAB_CHECK(fs::is_directory(m.path), ErrorKind::kNotFound,
                 "lab `{}`: mount `{}`: expected a folder at '{}', found none", spec.name, m.name,
                 m.path);
  }
  Execution e;
  e.name = spec.name;
  e.runner = options.runner();
  e.host = host_name();
  e.pid = ::getpid();
  e.hardware = spec.hardware.to_string();
  e.spec_hash = lab_spec_hash(spec);
  e.gpulab_version = GPULAB_VERSION;
  e = store.create(e);
  const std::string dir = store.dir(e.id);
  core::write_file_atomic(dir + "/spec.yaml", lab_spec_to_yaml(spec));
  for (const auto& m : spec.mounts) fs::create_directory_symlink(m.path, dir + "/mounts/" + m.name);

  store.transition(e.id, ExecutionState::kFetching);
  InputFetchOptions fetch(store.home() + "/cache");
  fetch.threads(options.fetch_threads());
#ifdef GPULAB_WITH_CURL
  fetch.s3(options.s3());
#endif
  fetch.resolve_exec([&store](const std::string& url) {
    const std::string id = exec_url_id(url);
    const Execution source = store.get(id);
    GPULAB_CHECK(source.state == ExecutionState::kFinished, ErrorKind::kInvalidArgument,
                 "execution {} is {}: expected a finished one", id, state_name(source.state));
    return resolve_exec_path(url, store.dir(id) + "/outputs");
  });
  try {
    const auto fetched = fetch_inputs(spec.inputs, dir + "/inputs", fetch);
    nlohmann::json digests = nlohmann::json::object();
    for (const auto& f : fetched) digests[f.name] = f.digest;
    e = store.get(e.id);
    e.input_digests = digests;
    store.update(e);
  } catch (const Error& error) {
    const std::string why = std::string("fetching inputs failed: ") + error.what();
    core::append_line_durable(dir + "/log",
                              log_timestamp() + " [gpulab] execution " + e.id + " failed: " + why);
    store.transition(e.id, ExecutionState::kFailed, why);
    return store.get(e.id);
  }
  if (store.get(e.id).stop_requested) {
    store.transition(e.id, ExecutionState::kStopped, "stopped before its command started");
    return store.get(e.id);
  }
  if (options.runner() == "slurm") return submit_to_slurm(store, spec, e.id, options);
  const int64_t supervisor = start_supervisor(options.gpulab_binary(), e.id);
  store.set_pid(e.id, supervisor);
  // The supervisor marks it running; wait briefly so the caller sees that.
  for (int i = 0; i < 100; ++i) {
    e = store.get(e.id);
    if (e.state != ExecutionState::kFetching) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return e;
}

bool stop_lab_execution(ExecutionStore& store, const std::string& id, const StopOptions& options) {
  if (store.get(id).runner == "slurm") return stop_slurm_execution(store, id, options);
  return stop_execution(store, id, options);
}

std::vector<std::string> reconcile_lab_executions(ExecutionStore& store) {
  std::vector<std::string> changed = reconcile_executions(store);
  for (auto& id : reconcile_slurm_executions(store)) changed.push_back(std::move(id));
  return changed;
}

LabSpec stored_spec(ExecutionStore& store, const std::string& id) {
  store.get(id);
  const std::string path = store.dir(id) + "/spec.yaml";
  return parse_lab_spec(core::read_file(path), path);
}

void copy_log(ExecutionStore& store, const std::string& id, std::FILE* out, bool follow,
              const std::atomic<bool>* cancel) {
  store.get(id);
  const std::string path = store.dir(id) + "/log";
  std::ifstream in;
  char buffer[8192];
  for (int round = 0;; ++round) {
    // Read the state before draining: what is logged before the end is seen.
    Execution e = store.get(id);
    if (follow && round % 10 == 9 && e.runner == "slurm" && reconcile_slurm_execution(store, e)) {
      e = store.get(id);
    }
    const bool ended = !follow || is_terminal(e.state);
    if (!in.is_open()) in.open(path, std::ios::binary);
    if (in.is_open()) {
      for (;;) {
        in.read(buffer, sizeof buffer);
        const auto n = in.gcount();
        if (n <= 0) break;
        std::fwrite(buffer, 1, static_cast<size_t>(n), out);
      }
      in.clear();
      std::fflush(out);
    }
    if (ended || (cancel && cancel->load())) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::vector<OutputFile> list_outputs(ExecutionStore& store, const std::string& id) {
  store.get(id);
  const fs::path root = store.dir(id) + "/outputs";
  std::vector<OutputFile> files;
  if (!fs::exists(root)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file() || entry.is_symlink()) continue;
    files.push_back(
        {fs::relative(entry.path(), root).string(), static_cast<int64_t>(entry.file_size())});
  }
  std::sort(files.begin(), files.end(),
            [](const OutputFile& a, const OutputFile& b) { return a.path < b.path; });
  return files;
}

}  // namespace gpulab::lab
