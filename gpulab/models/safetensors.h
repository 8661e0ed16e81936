// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets}, "__metadata__": {string: string}}, then raw little-endian data.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace gpulab::models {

struct SafetensorsContent {
  std::map<std::string, at::Tensor> tensors;  // CPU, contiguous
  std::map<std::string, std::string> metadata;
};

// Serialises tensors (any device; copied to CPU) in name order.
std::string encode_safetensors(const SafetensorsContent& content);

// Parses and validates as the spec (and Python's reader) does: header length,
// JSON, dtypes, integer shapes whose sizes match the byte ranges, ranges that
// tile the data buffer without overlap, gap or trailing bytes, and a
// __metadata__ of strings. Throws Error(kCorruptData) naming `source`.
SafetensorsContent decode_safetensors(const std::string& bytes, const std::string& source);

// Atomic write / checked read of a .safetensors file.
void save_safetensors(const std::string& path, const SafetensorsContent& content);
SafetensorsContent load_safetensors(const std::string& path);

}  // namespace gpulab::models
