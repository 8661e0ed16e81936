// Helpers shared by the tests: temporary folders, tiny data files written by
// the tests themselves, and running the gpulab binary.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace gpulab::testing {

// A fresh folder under /tmp, removed (recursively) when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);
std::string gzip_bytes(const std::string& raw);

// IDX file bytes for uint8 `values` of shape `dims` (magic 0x0800 + rank).
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values);

// Writes train-/t10k- IDX files for `images` [N, H, W] uint8 and `labels` [N].
void write_idx_split(const std::string& dir, const std::string& prefix, const at::Tensor& images,
                     const at::Tensor& labels, bool gzip);

// Binary PGM (grey) or PPM (RGB) for [C, H, W] uint8 with C = 1 or 3.
void write_pnm(const std::string& path, const at::Tensor& chw);

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, if any
  std::string output;  // stdout and stderr together
};

// Runs `gpulab ARGS...` (the binary built with the tests) and waits for it.
CommandResult run_gpulab(const std::vector<std::string>& args);

// Runs a shell command line (sh -c) and waits for it; output is stdout and
// stderr together.
CommandResult run_shell(const std::string& command_line);

// The message of the gpulab::Error `fn` throws, or "no error".
std::string error_of(const std::function<void()>& fn);

// Expects two safetensors files to hold the same tensor names, each pair
// allclose within `rtol`/`atol` (the message gives the largest difference).
void expect_same_weights(const std::string& a, const std::string& b, double rtol, double atol);

// Path of the gpulab binary and of Debian's Fashion-MNIST folder.
std::string gpulab_binary();
std::string fashion_mnist_dir();

}  // namespace gpulab::testing
