// Processes: the detached supervisor, the command in its own process group,
// the timestamped log, stop with a grace period, and reconciliation.
#include "gpulab/lab/local_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/lab/lab_spec.h"

extern char** environ;

namespace gpulab::lab {
namespace {
namespace fs = std::filesystem;

volatile std::sig_atomic_t g_lab_stop_signal = 0;

void lab_on_stop_signal(int signal) {
  g_lab_stop_signal = signal;
}

std::string lab_timestamp_now() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const int ms =
      static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", text, ms);
}

void lab_write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void lab_sleep_s(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

std::vector<std::string> lab_child_environment(const LabSpec& spec, const std::string& dir,
                                               const std::string& id) {
  std::vector<std::string> env;
  auto pass = [&](const std::string& name) {
    if (const char* v = std::getenv(name.c_str())) env.push_back(name + "=" + v);
  };
  for (const auto& name : base_environment_names()) pass(name);
  for (const auto& name : spec.env) pass(name);
  env.push_back("GPULAB_EXECUTION_ID=" + id);
  env.push_back("GPULAB_LAB_INPUTS=" + dir + "/inputs");
  env.push_back("GPULAB_LAB_MOUNTS=" + dir + "/mounts");
  env.push_back("GPULAB_LAB_OUTPUTS=" + dir + "/outputs");
  return env;
}

std::string lab_signal_text(int code) {
  if (code > 128) {
    const char* name = sigabbrev_np(code - 128);
    return fmt::format("killed by signal {} (SIG{})", code - 128, name ? name : "?");
  }
  return fmt::format("exit code {}", code);
}

// `name` itself when it holds a '/', else the first executable on PATH;
// `name` unchanged when none is (exec then fails and says so in the log).
std::string lab_find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t colon = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, colon - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
    start = colon + 1;
  }
  return name;
}

}  // namespace

std::string log_timestamp() {
  return lab_timestamp_now();
}

const std::vector<std::string>& base_environment_names() {
  static const std::vector<std::string> kNames = {"PATH",
                                                  "HOME",
                                                  "USER",
                                                  "LOGNAME",
                                                  "LANG",
                                                  "LC_ALL",
                                                  "TZ",
                                                  "TMPDIR",
                                                  "LD_LIBRARY_PATH",
                                                  "CUDA_VISIBLE_DEVICES",
                                                  "OMP_NUM_THREADS",
                                                  "GPULAB_HOME",
                                                  "GPULAB_CPU_ALLOCATOR"};
  return kNames;
}

bool process_alive(int64_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return true;
  const char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

int64_t start_supervisor(const std::string& gpulab_binary, const std::string& id) {
  int report[2];  // grandchild pid, then errno if exec failed; EOF = exec done
  GPULAB_CHECK(::pipe2(report, O_CLOEXEC) == 0, ErrorKind::kIo, "pipe failed: {}",
               std::strerror(errno));
  const pid_t middle = ::fork();
  GPULAB_CHECK(middle >= 0, ErrorKind::kIo, "fork failed: {}", std::strerror(errno));
  if (middle == 0) {
    // Only async-signal-safe calls from here to exec.
    ::close(report[0]);
    ::setsid();
    const pid_t supervisor = ::fork();
    if (supervisor != 0) {
      int64_t p = supervisor;
      (void)!::write(report[1], &p, sizeof p);
      ::_exit(supervisor > 0 ? 0 : 1);
    }
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    const char* argv[] = {gpulab_binary.c_str(), "lab", "supervise", id.c_str(), nullptr};
    ::execv(gpulab_binary.c_str(), const_cast<char* const*>(argv));
    int err = errno;
    (void)!::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(report[1]);
  int status = 0;
  ::waitpid(middle, &status, 0);
  int64_t pid = 0;
  ssize_t n = ::read(report[0], &pid, sizeof pid);
  int err = 0;
  const ssize_t m = n == sizeof pid ? ::read(report[0], &err, sizeof err) : 0;
  ::close(report[0]);
  GPULAB_CHECK(n == sizeof pid && pid > 0, ErrorKind::kIo,
               "could not start the supervisor of execution {}: fork failed", id);
  GPULAB_CHECK(m != sizeof err, ErrorKind::kIo,
               "could not start the supervisor of execution {}: exec '{}' failed: {}", id,
               gpulab_binary, std::strerror(err));
  return pid;
}

int supervise_execution(ExecutionStore& store, const std::string& id,
                        const std::string& gpulab_binary) {
  Execution e = store.get(id);
  if (is_terminal(e.state)) return e.exit_code.value_or(1);
  const std::string dir = store.dir(id);
  const LabSpec spec = parse_lab_spec(core::read_file(dir + "/spec.yaml"), dir + "/spec.yaml");
  const std::vector<std::string> argv = spec.argv(gpulab_binary);
  const std::vector<std::string> env = lab_child_environment(spec, dir, id);
  const int log = ::open((dir + "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  GPULAB_CHECK(log >= 0, ErrorKind::kIo, "cannot open '{}/log': {}", dir, std::strerror(errno));
  auto log_line = [&](const std::string& line) {
    lab_write_all(log, log_timestamp() + " " + line + "\n");
  };

  struct sigaction action {};
  action.sa_handler = lab_on_stop_signal;
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  int out[2];
  GPULAB_CHECK(::pipe2(out, O_CLOEXEC) == 0, ErrorKind::kIo, "pipe failed: {}",
               std::strerror(errno));
  std::vector<const char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(a.c_str());
  c_argv.push_back(nullptr);
  std::vector<const char*> c_env;
  for (const auto& v : env) c_env.push_back(v.c_str());
  c_env.push_back(nullptr);
  const std::string outputs = dir + "/outputs";
  // Found before fork(): the child only calls async-signal-safe functions.
  const std::string program = lab_find_program(argv[0]);
  c_argv[0] = program.c_str();

  const pid_t child = ::fork();
  GPULAB_CHECK(child >= 0, ErrorKind::kIo, "fork failed: {}", std::strerror(errno));
  if (child == 0) {
    ::setpgid(0, 0);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    if (::chdir(outputs.c_str()) != 0) {
      const char msg[] = "gpulab: cannot enter the outputs folder\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(126);
    }
    ::execve(c_argv[0], const_cast<char* const*>(c_argv.data()),
             const_cast<char* const*>(c_env.data()));
    const char msg[] = "gpulab: cannot run the lab's command: ";
    (void)!::write(2, msg, sizeof msg - 1);
    (void)!::write(2, c_argv[0], std::strlen(c_argv[0]));
    (void)!::write(2, "\n", 1);
    ::_exit(127);
  }
  ::setpgid(child, child);
  ::close(out[1]);

  e = store.get(id);
  e.state = ExecutionState::kRunning;
  e.started_at = unix_now();
  e.pid = ::getpid();
  e.child_pid = child;
  e.host = host_name();
  // Under Slurm: the submitter records the job id too, but this update may
  // come first and must not clear it.
  if (const char* job = std::getenv("SLURM_JOB_ID"); job && e.job_id.empty()) e.job_id = job;
  store.update(e);
  std::string command_line;
  for (const auto& a : argv) command_line += (command_line.empty() ? "" : " ") + a;
  log_line(fmt::format("[gpulab] execution {} running: {}", id, command_line));

  std::string partial;
  bool exited = false;
  int status = 0;
  double drain_deadline = 0;
  bool stop_sent = false;
  for (;;) {
    if (g_lab_stop_signal && !stop_sent) {
      store.set_stop_requested(id);
      ::kill(-child, SIGTERM);
      stop_sent = true;
    }
    pollfd p{out[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, 200);
    if (ready > 0) {
      char buffer[8192];
      const ssize_t n = ::read(out[0], buffer, sizeof buffer);
      if (n > 0) {
        partial.append(buffer, static_cast<size_t>(n));
        size_t start = 0;
        for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
          log_line(partial.substr(start, nl - start));
        }
        partial.erase(0, start);
      } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        break;  // every writer closed
      }
    }
    if (!exited && ::waitpid(child, &status, WNOHANG) == child) {
      exited = true;
      drain_deadline = unix_now() + 2.0;
    }
    // A background process that keeps the pipe open must not hold us forever.
    if (exited && unix_now() > drain_deadline) break;
  }
  if (!partial.empty()) log_line(partial);
  ::close(out[0]);
  ::kill(-child, SIGKILL);  // whatever the command left in its group
  if (!exited) ::waitpid(child, &status, 0);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

  const bool stopped = g_lab_stop_signal != 0 || store.get(id).stop_requested;
  const ExecutionState final_state = stopped     ? ExecutionState::kStopped
                                     : code == 0 ? ExecutionState::kFinished
                                                 : ExecutionState::kFailed;
  const std::string message = code == 0 && !stopped ? "" : lab_signal_text(code);
  log_line(fmt::format("[gpulab] execution {} {}: {}", id, state_name(final_state),
                       lab_signal_text(code)));
  ::close(log);
  store.transition(id, final_state, stopped ? "stopped: " + message : message, code);
  return code;
}

bool stop_execution(ExecutionStore& store, const std::string& id, const StopOptions& options) {
  Execution e = store.get(id);
  if (is_terminal(e.state)) return false;
  GPULAB_CHECK(e.runner == "local", ErrorKind::kInvalidArgument,
               "execution {} runs under the {} runner, not local: stop it with gpulab lab stop", id,
               e.runner);
  GPULAB_CHECK(e.host.empty() || e.host == host_name(), ErrorKind::kUnavailable,
               "execution {} runs on host '{}', not this one ('{}'): stop it there", id, e.host,
               host_name());
  store.set_stop_requested(id);
  if (e.state != ExecutionState::kRunning || e.child_pid <= 0) {
    // Pending or fetching: the submitter sees the request before starting.
    store.transition(id, ExecutionState::kStopped, "stopped before its command started");
    return true;
  }
  ::kill(-static_cast<pid_t>(e.child_pid), SIGTERM);
  auto wait_terminal = [&](double seconds) {
    const double until = unix_now() + seconds;
    for (;;) {
      if (is_terminal(store.get(id).state)) return true;
      if (unix_now() > until) return false;
      lab_sleep_s(0.05);
    }
  };
  if (wait_terminal(options.grace_s())) return true;
  ::kill(-static_cast<pid_t>(e.child_pid), SIGKILL);
  if (wait_terminal(5.0)) return true;
  store.transition(id, ExecutionState::kStopped,
                   "stopped: SIGKILL after a grace period; its supervisor did not record a result");
  return true;
}

std::vector<std::string> reconcile_executions(ExecutionStore& store) {
  std::vector<std::string> changed;
  const std::string here = host_name();
  for (const char* state : {"pending", "fetching", "running"}) {
    for (const Execution& e : store.list(ExecutionFilter().state(state).limit(1000))) {
      if (e.runner != "local" || (!e.host.empty() && e.host != here)) continue;
      if (process_alive(e.pid)) continue;
      if (e.child_pid > 0) ::kill(-static_cast<pid_t>(e.child_pid), SIGKILL);
      const std::string why =
          fmt::format("its {} process (pid {}) ended without recording a result{}",
                      e.state == ExecutionState::kRunning ? "supervisor" : "submitting", e.pid,
                      e.child_pid > 0 ? "; the command's process group was killed" : "");
      const auto final_state =
          e.stop_requested ? ExecutionState::kStopped : ExecutionState::kFailed;
      if (store.transition(e.id, final_state, why)) changed.push_back(e.id);
    }
  }
  return changed;
}

}  // namespace gpulab::lab
