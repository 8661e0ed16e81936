// POSIX implementation of atomic writes (open/write/fsync/rename).
#include "gpulab/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gpulab/core/error.h"

namespace gpulab::core {
namespace fs = std::filesystem;
namespace {

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    GPULAB_CHECK(n > 0, ErrorKind::kIo, "cannot write '{}': {}", path, std::strerror(errno));
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  fs::path target(path);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  GPULAB_CHECK(fd >= 0, ErrorKind::kIo, "cannot create '{}': {}", tmp, std::strerror(errno));
  try {
    write_all(fd, bytes.data(), bytes.size(), tmp);
    GPULAB_CHECK(::fsync(fd) == 0, ErrorKind::kIo, "cannot fsync '{}': {}", tmp,
                 std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    GPULAB_FAIL(ErrorKind::kIo, "cannot rename '{}' to '{}': {}", tmp, path, std::strerror(err));
  }
  fsync_dir(target.parent_path());
}

std::string read_file(const std::string& path) {
  GPULAB_CHECK(fs::exists(path), ErrorKind::kNotFound, "file '{}' does not exist", path);
  std::ifstream in(path, std::ios::binary);
  GPULAB_CHECK(in.good(), ErrorKind::kIo, "cannot open '{}' for reading", path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void append_line_durable(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  GPULAB_CHECK(fd >= 0, ErrorKind::kIo, "cannot open '{}' for appending: {}", path,
               std::strerror(errno));
  std::string with_newline = line + "\n";
  try {
    write_all(fd, with_newline.data(), with_newline.size(), path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::fdatasync(fd);
  ::close(fd);
}

void ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  GPULAB_CHECK(!ec && fs::is_directory(dir), ErrorKind::kIo, "cannot create output folder '{}': {}",
               dir, ec ? ec.message() : "a file with that name exists");
  std::string probe = (fs::path(dir) / ".gpulab-write-probe").string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  GPULAB_CHECK(fd >= 0, ErrorKind::kIo,
               "output folder '{}' is not writable: {} (choose another `out`)", dir,
               std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace gpulab::core
