// gpulab::Error and the one check macro that throws it. Messages say what was
// expected, what was found, where (file, rank) and a hint.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join: in ranges.h from fmt 11 on

#include <stdexcept>
#include <string>

namespace gpulab {

// Categories decide the CLI exit code: bad input is 2, a runtime failure is 1.
enum class ErrorKind {
  kInvalidArgument,  // a flag, option or value the user gave is wrong
  kNotFound,         // a file, folder, name or key that does not exist
  kIo,               // reading or writing failed (permissions, disk)
  kCorruptData,      // a file exists but its content is malformed
  kUnavailable,      // a device or service is not present on this machine
  kRuntime,          // training diverged or another failure while running
  kInternal,         // a bug in gpulab
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  // 2 for bad usage or bad input, 1 for a failure while running.
  int exit_code() const;

 private:
  ErrorKind kind_;
};

}  // namespace gpulab

// GPULAB_CHECK(cond, ErrorKind::kX, "fmt {}", args...): throws gpulab::Error.
#define GPULAB_CHECK(cond, kind, ...)                                    \
  do {                                                                   \
    if (!(cond)) {                                                       \
      throw ::gpulab::Error(::gpulab::kind, ::fmt::format(__VA_ARGS__)); \
    }                                                                    \
  } while (false)

#define GPULAB_FAIL(kind, ...) throw ::gpulab::Error(::gpulab::kind, ::fmt::format(__VA_ARGS__))
