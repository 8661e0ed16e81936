// sbatch scripts, squeue/scontrol parsing, scancel, and reconciliation of
// Slurm executions. Slurm's commands run as child processes (posix_spawnp).
#include "gpulab/lab/slurm_runner.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"

extern char** environ;

namespace gpulab::lab {
namespace {

struct SlurmCommandResult {
  int exit_code = -1;  // -1: could not start, or killed by a signal
  std::string output;  // stdout and stderr together
};

// Runs `argv` (looked up on PATH) with the caller's environment and waits.
SlurmCommandResult slurm_run(const std::vector<std::string>& argv) {
  SlurmCommandResult result;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    result.output = fmt::format("pipe failed: {}", std::strerror(errno));
    return result;
  }
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, c_argv[0], &actions, nullptr, c_argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (err != 0) {
    ::close(out[0]);
    result.output = fmt::format("cannot run '{}': {}", argv[0], std::strerror(err));
    return result;
  }
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(out[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buffer, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string slurm_trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Single-quoted for sh.
std::string slurm_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurm_job_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  return out.empty() ? "gpulab-lab" : out;
}

void slurm_sleep_s(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

// "3:0" -> 3, "0:15" -> 143 (128 + signal); nullopt when malformed.
std::optional<int> slurm_exit_code(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  try {
    const int code = std::stoi(text.substr(0, colon));
    const int signal = std::stoi(text.substr(colon + 1));
    return signal > 0 ? 128 + signal : code;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string slurm_batch_script(const std::string& id, const LabSpec& spec, const std::string& home,
                               const std::string& gpulab_binary) {
  const std::string dir = home + "/executions/" + id;
  std::string s = "#!/bin/sh\n";
  s += fmt::format("# gpulab lab execution {} ({}): written by `gpulab lab run --runner slurm`.\n",
                   id, spec.name);
  s +=
      "# The supervisor runs the lab's command in outputs/, writes ./log and records the result.\n";
  s += fmt::format("#SBATCH --job-name={}\n", slurm_job_name(spec.name));
  s += fmt::format("#SBATCH --chdir={}\n", dir);
  s += fmt::format("#SBATCH --output={}/slurm.out\n", dir);
  s += "#SBATCH --open-mode=append\n";
  s += "#SBATCH --ntasks=1\n";
  s += "#SBATCH --no-requeue\n";
  if (spec.hardware.type == "gpu") {
    s += fmt::format("#SBATCH --gres=gpu:{}\n", std::max(1, spec.hardware.gpus));
  }
  s += fmt::format("export GPULAB_HOME={}\n", slurm_quote(home));
  s += fmt::format("exec {} lab supervise {}\n", slurm_quote(gpulab_binary), slurm_quote(id));
  return s;
}

bool slurm_state_is_live(const std::string& state) {
  static const char* const kLive[] = {
      "PENDING",   "CONFIGURING", "RUNNING",       "COMPLETING",   "SUSPENDED",
      "REQUEUED",  "REQUEUE_FED", "REQUEUE_HOLD",  "RESIZING",     "SIGNALING",
      "STAGE_OUT", "STOPPED",     "RESV_DEL_HOLD", "POWER_UP_NODE"};
  for (const char* live : kLive) {
    if (state == live) return true;
  }
  return false;
}

std::string parse_sbatch_job_id(const std::string& output) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    line = slurm_trim(line);
    const std::string id = line.substr(0, line.find(';'));
    if (!id.empty() && std::all_of(id.begin(), id.end(), [](char c) { return std::isdigit(c); })) {
      return id;
    }
  }
  GPULAB_FAIL(ErrorKind::kCorruptData,
              "expected a job id from `sbatch --parsable` (e.g. \"42\"), found: '{}'",
              slurm_trim(output));
}

std::optional<std::string> parse_squeue_state(const std::string& output) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    line = slurm_trim(line);
    if (!line.empty()) return line;
  }
  return std::nullopt;
}

SlurmJobInfo parse_scontrol_job(const std::string& output) {
  SlurmJobInfo info;
  std::istringstream words(output);
  for (std::string word; words >> word;) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = word.substr(0, eq);
    const std::string value = word.substr(eq + 1);
    if (key == "JobState") {
      info.state = value;
      info.exists = true;
    } else if (key == "Reason") {
      info.reason = value;
    } else if (key == "ExitCode") {
      info.exit_code_text = value;
      info.exit_code = slurm_exit_code(value);
    }
  }
  return info;
}

bool slurm_job_unknown(const std::string& error_output) {
  return error_output.find("Invalid job id specified") != std::string::npos;
}

SlurmJobInfo query_slurm_job(const std::string& job_id) {
  const auto q = slurm_run({"squeue", "-j", job_id, "-t", "all", "-h", "-o", "%T"});
  SlurmJobInfo info;
  if (q.exit_code != 0 && slurm_job_unknown(q.output)) return info;  // purged: exists = false
  GPULAB_CHECK(q.exit_code == 0, ErrorKind::kUnavailable,
               "cannot ask Slurm about job {}: `squeue -j {}` answered: {} (is SLURM_CONF set and "
               "slurmctld up?)",
               job_id, job_id, slurm_trim(q.output));
  const auto state = parse_squeue_state(q.output);
  if (!state) return info;  // squeue lists nothing: the job is gone
  info.exists = true;
  info.state = *state;
  if (slurm_state_is_live(info.state)) return info;
  // Ended: scontrol has the exit code and reason (squeue's %T is enough for the state).
  const auto c = slurm_run({"scontrol", "show", "job", job_id});
  if (c.exit_code == 0) {
    const SlurmJobInfo detail = parse_scontrol_job(c.output);
    info.reason = detail.reason;
    info.exit_code_text = detail.exit_code_text;
    info.exit_code = detail.exit_code;
  }
  return info;
}

std::string submit_slurm_job(ExecutionStore& store, const std::string& id, const LabSpec& spec,
                             const std::string& gpulab_binary) {
  const std::string script = store.dir(id) + "/job.sbatch";
  core::write_file_atomic(script, slurm_batch_script(id, spec, store.home(), gpulab_binary));
  const auto r = slurm_run({"sbatch", "--parsable", script});
  GPULAB_CHECK(r.exit_code == 0, ErrorKind::kUnavailable,
               "expected `sbatch --parsable {}` to submit execution {}, it answered (exit {}): {} "
               "(is Slurm installed, SLURM_CONF set and slurmctld up? `sinfo` tells)",
               script, id, r.exit_code, slurm_trim(r.output));
  return parse_sbatch_job_id(r.output);
}

bool reconcile_slurm_execution(ExecutionStore& store, const Execution& e) {
  if (e.runner != "slurm" || is_terminal(e.state)) return false;
  const auto final_state = e.stop_requested ? ExecutionState::kStopped : ExecutionState::kFailed;
  if (e.job_id.empty()) {
    // Not submitted yet: the submitting `gpulab lab run` answers for it.
    if ((!e.host.empty() && e.host != host_name()) || process_alive(e.pid)) return false;
    return store.transition(
        e.id, final_state,
        fmt::format("its submitting process (pid {}) ended before a Slurm job was recorded",
                    e.pid));
  }
  SlurmJobInfo job;
  try {
    job = query_slurm_job(e.job_id);
  } catch (const Error&) {
    return false;  // Slurm unreachable: decide nothing now
  }
  if (job.exists && slurm_state_is_live(job.state)) return false;
  // The supervisor records its result before the job step ends; a row that
  // is still live now was never recorded (transition() keeps a recorded one).
  const std::string why =
      job.exists ? fmt::format(
                       "its Slurm job {} ended {} (exit code {}{}{}) without recording a "
                       "result; see {}/slurm.out",
                       e.job_id, job.state, job.exit_code_text,
                       job.reason.empty() || job.reason == "None" ? "" : ", reason ",
                       job.reason == "None" ? "" : job.reason, store.dir(e.id))
                 : fmt::format(
                       "its Slurm job {} is no longer known to squeue/scontrol and no "
                       "result was recorded; see {}/slurm.out",
                       e.job_id, store.dir(e.id));
  return store.transition(e.id, final_state, e.stop_requested ? "stopped: " + why : why,
                          job.exit_code);
}

std::vector<std::string> reconcile_slurm_executions(ExecutionStore& store) {
  std::vector<std::string> changed;
  for (const char* state : {"pending", "fetching", "running"}) {
    for (const Execution& e : store.list(ExecutionFilter().state(state).limit(1000))) {
      if (reconcile_slurm_execution(store, e)) changed.push_back(e.id);
    }
  }
  return changed;
}

bool stop_slurm_execution(ExecutionStore& store, const std::string& id,
                          const StopOptions& options) {
  const Execution e = store.get(id);
  if (is_terminal(e.state)) return false;
  store.set_stop_requested(id);
  if (e.job_id.empty()) {
    // Pending or fetching: the submitter sees the request before sbatch.
    store.transition(id, ExecutionState::kStopped, "stopped before its Slurm job was submitted");
    return true;
  }
  const auto cancel = slurm_run({"scancel", e.job_id});
  GPULAB_CHECK(cancel.exit_code == 0, ErrorKind::kUnavailable,
               "expected `scancel {}` to cancel execution {}, it answered (exit {}): {}", e.job_id,
               id, cancel.exit_code, slurm_trim(cancel.output));
  // The supervisor records `stopped` on SIGTERM; a job cancelled while still
  // queued never runs one, so Slurm is asked too (every 0.5 s).
  auto wait_terminal = [&](double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (int i = 0;; ++i) {
      const Execution now = store.get(id);
      if (is_terminal(now.state)) return true;
      if (i % 10 == 9 && reconcile_slurm_execution(store, now)) return true;
      if (std::chrono::steady_clock::now() > until) return false;
      slurm_sleep_s(0.05);
    }
  };
  if (wait_terminal(options.grace_s())) return true;
  slurm_run({"scancel", "--signal=KILL", "--full", e.job_id});
  if (wait_terminal(5.0)) return true;
  store.transition(id, ExecutionState::kStopped,
                   fmt::format("stopped: scancel {} sent SIGKILL after a grace period; its "
                               "supervisor did not record a result",
                               e.job_id));
  return true;
}

}  // namespace gpulab::lab
