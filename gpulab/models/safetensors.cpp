// safetensors encoding and validated decoding.
#include "gpulab/models/safetensors.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

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

struct TensorEntry {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data buffer
};

struct TensorRange {
  uint64_t begin, end;
  std::string name;
};

// The spec's __metadata__: an object of strings, or null for none (Python's
// reader refuses anything else).
std::map<std::string, std::string> decode_metadata(const nlohmann::json& j,
                                                   const std::string& source) {
  if (j.is_null()) return {};
  GPULAB_CHECK(j.is_object(), ErrorKind::kCorruptData,
               "'{}': safetensors __metadata__ must be an object of strings, found {}", source,
               j.type_name());
  std::map<std::string, std::string> metadata;
  for (auto m = j.begin(); m != j.end(); ++m) {
    GPULAB_CHECK(m->is_string(), ErrorKind::kCorruptData,
                 "'{}': safetensors __metadata__ must be an object of strings; '{}' is a JSON {}",
                 source, m.key(), m->type_name());
    metadata[m.key()] = m->get<std::string>();
  }
  return metadata;
}

// One tensor's dtype, shape and byte range, checked against the data buffer
// before anything is allocated: a corrupt shape must not reach LibTorch.
TensorEntry decode_entry(const std::string& name, const nlohmann::json& j, size_t data_size,
                         const std::string& source) {
  GPULAB_CHECK(
      j.is_object() && j.contains("dtype") && j.contains("shape") && j.contains("data_offsets"),
      ErrorKind::kCorruptData,
      "'{}': malformed entry for tensor '{}': expected an object with dtype, shape and "
      "data_offsets, found {}",
      source, name, j.dump());
  const nlohmann::json& dtype = j.at("dtype");
  auto type_it =
      dtype.is_string() ? dtype_table().find(dtype.get<std::string>()) : dtype_table().end();
  GPULAB_CHECK(type_it != dtype_table().end(), ErrorKind::kCorruptData,
               "'{}': tensor '{}' has unsupported dtype {}", source, name, dtype.dump());
  const nlohmann::json& shape = j.at("shape");
  const nlohmann::json& offsets = j.at("data_offsets");
  GPULAB_CHECK(shape.is_array(), ErrorKind::kCorruptData,
               "'{}': tensor '{}' has shape {}, not a list of dimensions", source, name,
               shape.dump());
  TensorEntry entry;
  entry.dtype = type_it->second;
  for (const auto& d : shape) {
    GPULAB_CHECK(d.is_number_integer(), ErrorKind::kCorruptData,
                 "'{}': tensor '{}' has shape {}; dimensions must be integers", source, name,
                 shape.dump());
    entry.shape.push_back(d.get<int64_t>());
  }
  GPULAB_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                   offsets[1].is_number_unsigned(),
               ErrorKind::kCorruptData,
               "'{}': tensor '{}' has data_offsets {}; expected [BEGIN, END], two non-negative "
               "integers",
               source, name, offsets.dump());
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  GPULAB_CHECK(entry.begin <= entry.end && entry.end <= data_size, ErrorKind::kCorruptData,
               "'{}': tensor '{}' lies outside the file's {} data bytes — the "
               "file is truncated or corrupt",
               source, name, data_size);
  uint64_t expected = c10::elementSize(entry.dtype);
  for (const int64_t d : entry.shape) {
    GPULAB_CHECK(d >= 0, ErrorKind::kCorruptData,
                 "'{}': tensor '{}' has a negative dimension in its shape [{}]", source, name,
                 fmt::join(entry.shape, ", "));
    expected = d == 0 || expected <= data_size / static_cast<uint64_t>(d)
                   ? expected * static_cast<uint64_t>(d)
                   : data_size + 1;  // more than the file holds
  }
  GPULAB_CHECK(entry.end - entry.begin == expected, ErrorKind::kCorruptData,
               "'{}': tensor '{}' has {} bytes but its shape [{}] needs {}", source, name,
               entry.end - entry.begin, fmt::join(entry.shape, ", "),
               expected > data_size ? "more than the file holds" : std::to_string(expected));
  return entry;
}

// As the spec (and Python's reader) requires: the tensors' byte ranges cover
// the data buffer exactly, one after another, without overlap or gap.
void check_ranges_tile(std::vector<TensorRange> ranges, uint64_t data_size,
                       const std::string& source) {
  std::sort(ranges.begin(), ranges.end(), [](const TensorRange& a, const TensorRange& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t at = 0;
  for (const auto& r : ranges) {
    GPULAB_CHECK(r.begin == at, ErrorKind::kCorruptData,
                 "'{}': tensor '{}' starts at data byte {} but the previous tensor ends at {}; "
                 "safetensors tensors must follow one another without {} — the file is corrupt",
                 source, r.name, r.begin, at, r.begin < at ? "overlap" : "a gap");
    at = r.end;
  }
  GPULAB_CHECK(at == data_size, ErrorKind::kCorruptData,
               "'{}': {} trailing bytes after the last tensor's data; the file is corrupt", source,
               data_size - at);
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
  std::map<std::string, TensorEntry> entries;
  std::vector<TensorRange> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      content.metadata = decode_metadata(*it, source);
      continue;
    }
    const TensorEntry& entry =
        entries.emplace(it.key(), decode_entry(it.key(), *it, data_size, source)).first->second;
    ranges.push_back({entry.begin, entry.end, it.key()});
  }
  // Before allocating: overlapping ranges would multiply the memory a file takes.
  check_ranges_tile(ranges, data_size, source);
  for (const auto& [name, entry] : entries) {
    auto tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype));
    std::memcpy(tensor.data_ptr(), data + entry.begin, entry.end - entry.begin);
    content.tensors[name] = tensor;
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
