// launch_local: fork/exec of the ranks, a poll loop over their stderr and
// exits, failure handling and restarts.
#include "gpulab/distributed/local_launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

#include "gpulab/core/error.h"

namespace gpulab::distributed {
namespace {

std::atomic<int> g_forward_signal{0};
extern "C" void remember_signal(int sig) {
  g_forward_signal.store(sig);
}

struct Rank {
  int rank = 0;
  pid_t pid = -1;
  int stderr_fd = -1;
  std::string partial;             // stderr text after the last newline
  std::deque<std::string> recent;  // last stderr lines, for the failure message
  bool running = false;
  int status = 0;
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return fmt::format("killed by signal {} (SIG{})", sig, name ? name : "?");
  }
  return "stopped";
}

bool succeeded(int status) {
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void forward_line(const Rank& r, const std::string& line, bool prefix) {
  const std::string out = prefix ? fmt::format("[rank {}] {}\n", r.rank, line) : line + "\n";
  (void)!::write(STDERR_FILENO, out.data(), out.size());
}

void drain(Rank& r, bool prefix) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(r.stderr_fd, buf, sizeof buf);
    if (n <= 0) break;
    r.partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = r.partial.find('\n')) != std::string::npos) {
      std::string line = r.partial.substr(0, nl);
      r.partial.erase(0, nl + 1);
      forward_line(r, line, prefix);
      if (!line.empty()) r.recent.push_back(line);
      if (r.recent.size() > 8) r.recent.pop_front();
    }
  }
}

std::string last_error(const Rank& r) {
  return most_telling_line({r.recent.begin(), r.recent.end()});
}

pid_t spawn(const std::vector<std::string>& command, int rank, int world, int port,
            const LaunchOptions& o, int restart, int* stderr_fd) {
  int fds[2];
  GPULAB_CHECK(::pipe2(fds, O_CLOEXEC) == 0, ErrorKind::kIo, "launch: pipe failed: {}",
               std::strerror(errno));
  const pid_t pid = ::fork();
  GPULAB_CHECK(pid >= 0, ErrorKind::kIo, "launch: fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    // The rank dies with the launcher, whatever kills the launcher.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::dup2(fds[1], STDERR_FILENO);
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("MASTER_ADDR", o.master_addr().c_str(), 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    ::setenv("GPULAB_RESTART_COUNT", std::to_string(restart).c_str(), 1);
    // The job's identity for the rendezvous: this launcher, port and attempt.
    ::setenv("GPULAB_JOB_ID", fmt::format("launch-{}-{}-{}", ::getppid(), port, restart).c_str(),
             1);
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    const std::string msg = fmt::format("gpulab launch: error: cannot run '{}': {}\n", command[0],
                                        std::strerror(errno));
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(fds[1]);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  *stderr_fd = fds[0];
  return pid;
}

// One attempt: all ranks up, then poll until every rank ended.
LaunchResult run_attempt(const std::vector<std::string>& command, const LaunchOptions& o,
                         int restart) {
  const int port = o.master_port() > 0 ? o.master_port() : free_tcp_port();
  std::vector<Rank> ranks(o.processes());
  for (int r = 0; r < o.processes(); ++r) {
    ranks[r].rank = r;
    ranks[r].pid = spawn(command, r, o.processes(), port, o, restart, &ranks[r].stderr_fd);
    ranks[r].running = true;
  }
  std::vector<std::string> pids;
  for (const auto& r : ranks) pids.push_back(std::to_string(r.pid));
  std::fprintf(stderr, "gpulab launch: %d ranks (pids %s), rendezvous %s:%d%s\n", o.processes(),
               fmt::format("{}", fmt::join(pids, " ")).c_str(), o.master_addr().c_str(), port,
               restart > 0 ? fmt::format(", restart {}", restart).c_str() : "");
  LaunchResult result;
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_deadline;
  int forwarded = 0;
  auto stop_others = [&](int sig) {
    for (auto& r : ranks) {
      if (r.running) ::kill(r.pid, sig);
    }
  };
  for (;;) {
    std::vector<pollfd> fds;
    for (auto& r : ranks) {
      if (r.stderr_fd >= 0) fds.push_back({r.stderr_fd, POLLIN, 0});
    }
    ::poll(fds.data(), fds.size(), 100);
    for (auto& r : ranks) {
      if (r.stderr_fd >= 0) drain(r, o.prefix_stderr());
    }
    if (const int sig = g_forward_signal.exchange(0); sig != 0) {
      forwarded = sig;
      stop_others(sig);
      if (!kill_deadline) {
        kill_deadline = Clock::now() + std::chrono::milliseconds(
                                           static_cast<int64_t>(o.grace_seconds() * 1000 * 3));
      }
    }
    for (auto& r : ranks) {
      if (!r.running) continue;
      int status = 0;
      if (::waitpid(r.pid, &status, WNOHANG) != r.pid) continue;
      r.running = false;
      r.status = status;
      if (r.stderr_fd >= 0) {
        drain(r, o.prefix_stderr());
        if (!r.partial.empty()) forward_line(r, r.partial, o.prefix_stderr());
        ::close(r.stderr_fd);
        r.stderr_fd = -1;
      }
      if (!succeeded(status) && result.failed_rank < 0 && forwarded == 0) {
        result.failed_rank = r.rank;
        const std::string error = last_error(r);
        result.failure = describe_status(status) + (error.empty() ? "" : ": " + error);
        result.lost_rank = rank_blamed_in(error, r.rank);
        int others = 0;
        for (auto& other : ranks) others += other.running ? 1 : 0;
        if (others > 0) {
          std::fprintf(stderr, "gpulab launch: rank %d failed (%s); stopping the other %d rank%s\n",
                       r.rank, result.failure.c_str(), others, others == 1 ? "" : "s");
          stop_others(SIGTERM);
        }
        kill_deadline = Clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds() * 1000));
      }
    }
    bool any = false;
    for (auto& r : ranks) any = any || r.running;
    if (!any) break;
    if (kill_deadline && Clock::now() > *kill_deadline) {
      stop_others(SIGKILL);
      kill_deadline.reset();
    }
  }
  if (result.failed_rank >= 0) {
    const int status = ranks[result.failed_rank].status;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  } else if (forwarded != 0) {
    result.exit_code = 130;
    for (auto& r : ranks) {
      if (WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0)
        result.exit_code = WEXITSTATUS(r.status);
    }
  }
  return result;
}

}  // namespace

std::string most_telling_line(const std::vector<std::string>& lines) {
  // CLI11 ends a usage error with this hint, after the line that says what
  // was wrong ("The following argument was not expected: --x").
  static const std::string kHelpHint = "Run with --help for more information.";
  for (size_t i = lines.size(); i-- > 1;) {
    if (lines[i] == kHelpHint) return lines[i - 1];
  }
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->find("error") != std::string::npos) return *it;
  }
  return lines.empty() ? std::string() : lines.back();
}

int rank_blamed_in(const std::string& error, int own_rank) {
  for (const std::string marker : {"lost rank ", ": rank "}) {
    for (size_t at = error.find(marker); at != std::string::npos; at = error.find(marker, at + 1)) {
      size_t end = at + marker.size();
      while (end < error.size() && std::isdigit(static_cast<unsigned char>(error[end]))) ++end;
      if (end == at + marker.size()) continue;
      // ": rank N" must go on " failed:" to be a rank that announced a failure.
      if (marker == ": rank " && error.compare(end, 8, " failed:") != 0) continue;
      const int rank = std::stoi(error.substr(at + marker.size(), end - at - marker.size()));
      if (rank != own_rank) return rank;
    }
  }
  return -1;
}

std::string LaunchResult::headline(int world_size) const {
  const std::string after =
      restarts > 0 ? fmt::format(" (after {} restart{})", restarts, restarts == 1 ? "" : "s") : "";
  if (lost_rank >= 0) {
    return fmt::format("rank {} of {} failed or stopped answering; rank {} reported: {}{}",
                       lost_rank, world_size, failed_rank, failure, after);
  }
  return fmt::format("rank {} of {} failed: {}{}", failed_rank, world_size, failure, after);
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  GPULAB_CHECK(fd >= 0, ErrorKind::kIo, "cannot open a socket: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  GPULAB_CHECK(ok, ErrorKind::kIo, "cannot find a free TCP port: {}", std::strerror(errno));
  return ntohs(addr.sin_port);
}

LaunchResult launch_local(const std::vector<std::string>& command, const LaunchOptions& options) {
  GPULAB_CHECK(!command.empty(), ErrorKind::kInvalidArgument,
               "launch needs a command after '--', e.g. gpulab launch -n 2 -- gpulab train ...");
  GPULAB_CHECK(options.processes() >= 1, ErrorKind::kInvalidArgument,
               "launch -n must be at least 1, got {}", options.processes());
  GPULAB_CHECK(options.max_restarts() >= 0, ErrorKind::kInvalidArgument,
               "`max_restarts` must be >= 0, got {}", options.max_restarts());
  struct sigaction sa {};
  sa.sa_handler = remember_signal;
  struct sigaction old_int {
  }, old_term{};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  LaunchResult result;
  for (int attempt = 0;; ++attempt) {
    result = run_attempt(command, options, attempt);
    result.restarts = attempt;
    if (result.exit_code == 0 || result.failed_rank < 0 || attempt >= options.max_restarts()) break;
    std::fprintf(stderr, "gpulab launch: restarting all %d ranks (restart %d of %d)\n",
                 options.processes(), attempt + 1, options.max_restarts());
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace gpulab::distributed
