// safetensors encoding and validated decoding.
#include "gpulab/models/safetensors.h"

#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"

namespace gpulab::models {
namespace {

const std::map<std::string, at::ScalarType>& dtype_table() {
  static const std::map<std::string, at::ScalarType> table = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool}};
  return table;
}

std::string dtype_name(at::ScalarType type) {
  for (const auto& [name, t] : dtype_table()) {
    if (t == type) return name;
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument, "safetensors cannot store dtype {}",
              c10::toString(type));
}

}  // namespace

std::string encode_safetensors(const SafetensorsContent& content) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<at::Tensor> ordered;
  size_t offset = 0;
  for (const auto& [name, tensor] : content.tensors) {
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    size_t bytes = cpu.numel() * cpu.element_size();
    header[name] = {{"dtype", dtype_name(cpu.scalar_type())},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    ordered.push_back(cpu);
  }
  if (!content.metadata.empty()) header["__metadata__"] = content.metadata;
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // align the data to 8 bytes
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += json;
  out.reserve(out.size() + offset);
  for (const auto& t : ordered) {
    out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return out;
}

SafetensorsContent decode_safetensors(const std::string& bytes, const std::string& source) {
  GPULAB_CHECK(bytes.size() >= 8, ErrorKind::kCorruptData,
               "'{}' is not a safetensors file: {} bytes, shorter than the header length", source,
               bytes.size());
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  GPULAB_CHECK(n >= 2 && n <= bytes.size() - 8 && n < (100u << 20), ErrorKind::kCorruptData,
               "'{}' is not a safetensors file or is truncated: header length {} "
               "does not fit the file's {} bytes",
               source, n, bytes.size());
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  } catch (const nlohmann::json::exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "'{}': safetensors header is not valid JSON ({})", source,
                e.what());
  }
  GPULAB_CHECK(header.is_object(), ErrorKind::kCorruptData,
               "'{}': safetensors header must be a JSON object", source);
  const char* data = bytes.data() + 8 + n;
  const size_t data_size = bytes.size() - 8 - n;
  SafetensorsContent content;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it->begin(); m != it->end(); ++m) {
        content.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      }
      continue;
    }
    const auto& entry = it.value();
    try {
      std::string dtype = entry.at("dtype").get<std::string>();
      auto type_it = dtype_table().find(dtype);
      GPULAB_CHECK(type_it != dtype_table().end(), ErrorKind::kCorruptData,
                   "'{}': tensor '{}' has unsupported dtype '{}'", source, it.key(), dtype);
      auto shape = entry.at("shape").get<std::vector<int64_t>>();
      auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      GPULAB_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_size,
                   ErrorKind::kCorruptData,
                   "'{}': tensor '{}' lies outside the file's {} data bytes — the "
                   "file is truncated or corrupt",
                   source, it.key(), data_size);
      // Checked before allocating: a corrupt shape must not reach LibTorch.
      uint64_t expected = c10::elementSize(type_it->second);
      for (const int64_t d : shape) {
        GPULAB_CHECK(d >= 0, ErrorKind::kCorruptData,
                     "'{}': tensor '{}' has a negative dimension in its shape [{}]", source,
                     it.key(), fmt::join(shape, ", "));
        expected = d == 0 || expected <= data_size / static_cast<uint64_t>(d)
                       ? expected * static_cast<uint64_t>(d)
                       : data_size + 1;  // more than the file holds
      }
      GPULAB_CHECK(offsets[1] - offsets[0] == expected, ErrorKind::kCorruptData,
                   "'{}': tensor '{}' has {} bytes but its shape [{}] needs {}", source, it.key(),
                   offsets[1] - offsets[0], fmt::join(shape, ", "),
                   expected > data_size ? "more than the file holds" : std::to_string(expected));
      auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type_it->second));
      std::memcpy(tensor.data_ptr(), data + offsets[0], expected);
      content.tensors[it.key()] = tensor;
    } catch (const nlohmann::json::exception& e) {
      GPULAB_FAIL(ErrorKind::kCorruptData, "'{}': malformed entry for tensor '{}' ({})", source,
                  it.key(), e.what());
    }
  }
  return content;
}

void save_safetensors(const std::string& path, const SafetensorsContent& content) {
  core::write_file_atomic(path, encode_safetensors(content));
}

SafetensorsContent load_safetensors(const std::string& path) {
  return decode_safetensors(core::read_file(path), path);
}

}  // namespace gpulab::models
