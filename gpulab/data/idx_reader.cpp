// IDX parsing with validation against the file's real length.
#include "gpulab/data/idx_reader.h"

#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"

namespace gpulab::data {
namespace {

bool has_gzip_magic(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::string gunzip(const std::string& compressed, const std::string& path) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header.
  GPULAB_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, ErrorKind::kInternal,
               "zlib initialisation failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  char buffer[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof(buffer);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  std::string detail = zs.msg ? zs.msg : "unexpected end of data";
  inflateEnd(&zs);
  GPULAB_CHECK(rc == Z_STREAM_END, ErrorKind::kCorruptData,
               "'{}' is a corrupt or truncated gzip file ({}); re-download it", path,
               rc == Z_BUF_ERROR ? "unexpected end of data" : detail);
  return out;
}

uint32_t read_be32(const std::string& bytes, size_t offset) {
  auto b = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

std::string read_maybe_gzip(const std::string& path) {
  std::string bytes = core::read_file(path);
  return has_gzip_magic(bytes) ? gunzip(bytes, path) : bytes;
}

at::Tensor read_idx_file(const std::string& path, int expected_rank) {
  std::string bytes = read_maybe_gzip(path);
  GPULAB_CHECK(bytes.size() >= 4, ErrorKind::kCorruptData,
               "IDX: '{}' is {} bytes long, too short for an IDX header", path, bytes.size());
  uint32_t magic = read_be32(bytes, 0);
  uint32_t expected_magic = 0x0800u + static_cast<uint32_t>(expected_rank);
  if (magic != expected_magic) {
    std::string hint;
    if (magic == 0x0801u) hint = " — is this a labels file?";
    if (magic == 0x0803u) hint = " — is this an images file?";
    GPULAB_FAIL(ErrorKind::kCorruptData, "IDX: expected magic {} in '{}', found {}{}",
                expected_magic, path, magic, hint.empty() ? " — not an uint8 IDX file" : hint);
  }
  size_t header = 4 + 4 * static_cast<size_t>(expected_rank);
  GPULAB_CHECK(bytes.size() >= header, ErrorKind::kCorruptData,
               "IDX: '{}' is truncated inside its header ({} bytes)", path, bytes.size());
  std::vector<int64_t> dims;
  size_t expected_bytes = 1;
  for (int d = 0; d < expected_rank; ++d) {
    uint32_t dim = read_be32(bytes, 4 + 4 * static_cast<size_t>(d));
    GPULAB_CHECK(dim > 0 && dim < (1u << 28), ErrorKind::kCorruptData,
                 "IDX: '{}' declares dimension {} = {}, which is not plausible", path, d, dim);
    dims.push_back(dim);
    expected_bytes *= dim;
  }
  size_t actual = bytes.size() - header;
  GPULAB_CHECK(actual == expected_bytes, ErrorKind::kCorruptData,
               "IDX: '{}' declares {} values ({}) but holds {} bytes of data — "
               "the file is {}",
               path, expected_bytes, fmt::join(dims, "x"), actual,
               actual < expected_bytes ? "truncated" : "longer than declared");
  auto tensor = torch::empty(dims, torch::kUInt8);
  std::memcpy(tensor.data_ptr<uint8_t>(), bytes.data() + header, expected_bytes);
  return tensor;
}

}  // namespace gpulab::data
