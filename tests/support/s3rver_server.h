// A real S3-compatible server for tests: s3rver (npm, tests/support/s3rver)
// started on a free loopback port, with a strict SigV4 check in front (see
// tests/support/s3rver/launch.js), and a tiny PNG encoder for test objects.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace gpulab::testing {

class S3rverServer {
 public:
  // Credentials the server accepts: s3rver's built-in pair and a second one
  // whose secret is distinctive enough to search for in outputs.
  static constexpr const char* kAccessKey = "GPULABTESTKEY";
  static constexpr const char* kSecret = "gpulab-test-secret-7Qx2vLm9";
  static constexpr const char* kRegion = "us-east-1";

  // Starts the server with these buckets and waits until it listens. Throws
  // std::runtime_error with the server's output and the fix when node or the
  // npm package is missing or the server does not start within 60 s.
  // `public_buckets` also answer anonymous GET/HEAD (plain http(s) URLs).
  explicit S3rverServer(const std::vector<std::string>& buckets,
                        const std::vector<std::string>& public_buckets = {});
  ~S3rverServer();  // SIGTERM, then waits for it
  S3rverServer(const S3rverServer&) = delete;
  S3rverServer& operator=(const S3rverServer&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Requests served so far, one "METHOD URL STATUS" per entry.
  std::vector<std::string> requests() const;
  // How many served requests start with `prefix`, e.g. "GET /bucket/key".
  int64_t count_requests(const std::string& prefix) const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

// PNG file bytes (8-bit grey, no filter) of an h x w image filled with `value`.
std::string png_bytes(int height, int width, uint8_t value);

// Sets (or, with set = false, unsets) an environment variable for the
// lifetime of the object; the previous value, if any, comes back after.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value, bool set = true);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  bool had_ = false;
  std::string old_;
};

}  // namespace gpulab::testing
