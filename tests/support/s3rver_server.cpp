// Spawns tests/support/s3rver/launch.js and waits for its "LISTENING" line.
#include "tests/support/s3rver_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace gpulab::testing {
namespace {

const char* kHint =
    "the remote-data tests need node and the npm package s3rver: run scripts/install-deps.sh "
    "(it runs 'npm ci --omit=dev' in tests/support/s3rver)";

}  // namespace

S3rverServer::S3rverServer(const std::vector<std::string>& buckets,
                           const std::vector<std::string>& public_buckets) {
  const std::string launcher = std::string(GPULAB_SOURCE_DIR) + "/tests/support/s3rver/launch.js";
  std::vector<std::string> args = {"node",        launcher,
                                   "--directory", dir_ / "data",
                                   "--log",       dir_ / "requests.log",
                                   "--region",    kRegion,
                                   "--key",       std::string(kAccessKey) + ":" + kSecret};
  for (const auto& b : buckets) {
    args.push_back("--bucket");
    args.push_back(b);
  }
  for (const auto& b : public_buckets) {
    args.push_back("--public");
    args.push_back(b);
  }
  write_bytes(dir_ / "data/.keep", "");
  write_bytes(dir_ / "requests.log", "");
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe() failed");
  const std::string err_path = dir_ / "stderr.log";
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork() failed");
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, STDERR_FILENO);
    ::close(out[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("node", argv.data());
    std::fprintf(stderr, "cannot run node: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);
  stdout_fd_ = out[0];
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (text.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      char buf[256];
      const ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
      if (n <= 0) break;  // exited
      text.append(buf, static_cast<size_t>(n));
    }
  }
  if (text.rfind("LISTENING ", 0) == 0) port_ = std::atoi(text.c_str() + 10);
  if (port_ <= 0) {
    const std::string err = read_bytes(err_path);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    throw std::runtime_error("s3rver did not start (" + text + err + "); " + kHint);
  }
}

S3rverServer::~S3rverServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 50 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) ::usleep(100 * 1000);
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

std::vector<std::string> S3rverServer::requests() const {
  std::vector<std::string> lines;
  std::ifstream in(dir_ / "requests.log");
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

int64_t S3rverServer::count_requests(const std::string& prefix) const {
  int64_t n = 0;
  for (const auto& line : requests()) n += line.rfind(prefix, 0) == 0;
  return n;
}

std::string png_bytes(int height, int width, uint8_t value) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string td = type + data;
    const uLong crc = ::crc32(0, reinterpret_cast<const Bytef*>(td.data()), td.size());
    return be32(static_cast<uint32_t>(data.size())) + td + be32(static_cast<uint32_t>(crc));
  };
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    raw.append(static_cast<size_t>(width), static_cast<char>(value));
  }
  uLongf size = ::compressBound(raw.size());
  std::string z(size, '\0');
  ::compress(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
             raw.size());
  z.resize(size);
  const std::string ihdr = be32(static_cast<uint32_t>(width)) +
                           be32(static_cast<uint32_t>(height)) + std::string{8, 0, 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) +
         chunk("IEND", "");
}

ScopedEnv::ScopedEnv(std::string name, const std::string& value, bool set)
    : name_(std::move(name)) {
  if (const char* old = std::getenv(name_.c_str())) {
    had_ = true;
    old_ = old;
  }
  if (set) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  } else {
    ::unsetenv(name_.c_str());
  }
}

ScopedEnv::~ScopedEnv() {
  if (had_) {
    ::setenv(name_.c_str(), old_.c_str(), 1);
  } else {
    ::unsetenv(name_.c_str());
  }
}

}  // namespace gpulab::testing
