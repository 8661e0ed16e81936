// Test helpers.
#include "tests/support/test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "gpulab/core/error.h"
#include "gpulab/models/safetensors.h"

namespace gpulab::testing {
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void expect_same_weights(const std::string& a, const std::string& b, double rtol, double atol) {
  const auto wa = models::load_safetensors(a).tensors;
  const auto wb = models::load_safetensors(b).tensors;
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, tensor] : wa) {
    ASSERT_TRUE(wb.count(name)) << name;
    EXPECT_TRUE(torch::allclose(tensor, wb.at(name), rtol, atol))
        << name << ": max difference " << (tensor - wb.at(name)).abs().max().item<double>();
  }
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() /
           ("gpulab-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd())))
              .string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string gzip_bytes(const std::string& raw) {
  z_stream zs{};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, raw.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::string out = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  out.append(reinterpret_cast<const char*>(values.data()), values.size());
  return out;
}

void write_idx_split(const std::string& dir, const std::string& prefix, const at::Tensor& images,
                     const at::Tensor& labels, bool gzip) {
  auto img = images.to(torch::kUInt8).contiguous();
  auto lab = labels.to(torch::kUInt8).contiguous();
  std::vector<uint8_t> iv(img.data_ptr<uint8_t>(), img.data_ptr<uint8_t>() + img.numel());
  std::vector<uint8_t> lv(lab.data_ptr<uint8_t>(), lab.data_ptr<uint8_t>() + lab.numel());
  std::string ib =
      idx_bytes({static_cast<uint32_t>(img.size(0)), static_cast<uint32_t>(img.size(1)),
                 static_cast<uint32_t>(img.size(2))},
                iv);
  std::string lb = idx_bytes({static_cast<uint32_t>(lab.size(0))}, lv);
  const std::string ext = gzip ? ".gz" : "";
  write_bytes(dir + "/" + prefix + "-images-idx3-ubyte" + ext, gzip ? gzip_bytes(ib) : ib);
  write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, gzip ? gzip_bytes(lb) : lb);
}

void write_pnm(const std::string& path, const at::Tensor& chw) {
  auto hwc = chw.permute({1, 2, 0}).contiguous().to(torch::kUInt8);
  const bool grey = chw.size(0) == 1;
  std::string header = std::string(grey ? "P5" : "P6") + "\n" + std::to_string(chw.size(2)) + " " +
                       std::to_string(chw.size(1)) + "\n255\n";
  write_bytes(path, header + std::string(reinterpret_cast<const char*>(hwc.data_ptr<uint8_t>()),
                                         static_cast<size_t>(hwc.numel())));
}

CommandResult run_gpulab(const std::vector<std::string>& args) {
  std::string command = "'" + gpulab_binary() + "'";
  for (const auto& a : args) command += " '" + a + "'";
  return run_shell(command);
}

CommandResult run_shell(const std::string& command_line) {
  const std::string command = "{ " + command_line + " ; } 2>&1";
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  // popen runs through sh, which reports a signalled child as 128 + signal.
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  if (result.exit_code > 128) result.signal = result.exit_code - 128;
  return result;
}

std::string gpulab_binary() {
  return GPULAB_BINARY;
}
std::string fashion_mnist_dir() {
  return GPULAB_FASHION_MNIST;
}

}  // namespace gpulab::testing
