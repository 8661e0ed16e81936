// Error categories and their exit codes.
#include "gpulab/core/error.h"

namespace gpulab {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kIo:
      return "I/O error";
    case ErrorKind::kCorruptData:
      return "corrupt data";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kRuntime:
      return "runtime failure";
    case ErrorKind::kInternal:
      return "internal error";
  }
  return "error";
}

int Error::exit_code() const {
  switch (kind_) {
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kNotFound:
    case ErrorKind::kCorruptData:
      return 2;
    default:
      return 1;
  }
}

}  // namespace gpulab
