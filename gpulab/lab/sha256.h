// SHA-256 (FIPS 180-4) for lab spec hashes and input digests: a small
// streaming implementation, so the lab layer needs no crypto library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gpulab::lab {

// Streaming hasher: update() any number of times, then hex_digest() once.
// Not thread-safe; cheap to construct.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  // 64 lower-case hex digits; the object cannot be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// sha256 of `text` as 64 hex digits.
std::string sha256_hex(std::string_view text);

// sha256 of a file's bytes as 64 hex digits. Throws Error(kNotFound/kIo)
// naming the path.
std::string sha256_file(const std::string& path);

}  // namespace gpulab::lab
