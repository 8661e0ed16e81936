// MAT-file reading over matio, with the checks matio leaves to its callers.
#include "gpulab/models/mat_file.h"

#include <torch/torch.h>
#include <zlib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "gpulab/core/error.h"

namespace gpulab::models::detail {
namespace {
namespace fs = std::filesystem;

// matio reports problems through one process-wide log callback that prints to
// stderr; keep this thread's last message instead, to quote in our errors.
thread_local std::string t_matio_message;

void capture_matio_log(int level, char* message) {
  constexpr int kProblems =
      MATIO_LOG_LEVEL_ERROR | MATIO_LOG_LEVEL_CRITICAL | MATIO_LOG_LEVEL_WARNING;
  if ((level & kProblems) != 0 && message != nullptr) t_matio_message = message;
}

void install_matio_log() {
  static std::once_flag once;
  std::call_once(once, [] { Mat_LogInitFunc("gpulab", capture_matio_log); });
  t_matio_message.clear();
}

std::string matio_said() {
  return t_matio_message.empty() ? "" : fmt::format(" (matio: {})", t_matio_message);
}

// The first bytes of a file as text, for "it begins ..." hints.
std::string printable_prefix(const unsigned char* bytes, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && bytes[i] != 0; ++i) {
    out += (bytes[i] >= 32 && bytes[i] < 127) ? static_cast<char>(bytes[i]) : '.';
  }
  return out;
}

// MAT v7.3: HDF5 with the MATLAB header in a 512-byte user block. The HDF5
// superblock after it records the file's end; matio does not report an HDF5
// file it fails to open (it lists no variables), so check the end here.
void check_hdf5_end(std::ifstream& in, uint64_t size, const std::string& path) {
  constexpr uint64_t kSuperblock = 512;
  std::array<unsigned char, 64> block{};
  in.seekg(static_cast<std::streamoff>(kSuperblock));
  in.read(reinterpret_cast<char*>(block.data()), block.size());
  GPULAB_CHECK(size >= kSuperblock + block.size() && in.good(), ErrorKind::kCorruptData,
               "'{}' is truncated: a MAT v7.3 file of {} bytes ends inside its HDF5 superblock "
               "— download it again",
               path, size);
  static const unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  GPULAB_CHECK(std::equal(kSignature, kSignature + 8, block.begin()), ErrorKind::kCorruptData,
               "'{}' says it is MAT v7.3 but has no HDF5 superblock at byte 512", path);
  // Superblock versions 0 and 1 keep the size of addresses at byte 13 and the
  // end-of-file address after the base and free-space addresses (at 24 or 28);
  // versions 2 and 3 at byte 9 and after the base and extension addresses (12).
  const int superblock_version = block[8];
  const size_t address_size = superblock_version <= 1 ? block[13] : block[9];
  const size_t base = superblock_version == 0 ? 24 : superblock_version == 1 ? 28 : 12;
  const size_t at = base + 2 * address_size;
  GPULAB_CHECK(address_size >= 2 && address_size <= 8 && at + address_size <= block.size(),
               ErrorKind::kCorruptData, "'{}': unreadable HDF5 superblock (version {})", path,
               superblock_version);
  uint64_t end = 0;
  for (size_t i = 0; i < address_size; ++i) end |= static_cast<uint64_t>(block[at + i]) << (8 * i);
  GPULAB_CHECK(end <= size, ErrorKind::kCorruptData,
               "'{}' is truncated: its HDF5 data ends at byte {}, but the file has {} bytes — "
               "download it again",
               path, end, size);
}

// Inflates the data of the miCOMPRESSED element at `offset` (`length` bytes
// after its tag) and discards it: matio reads a damaged stream as garbage.
void check_zlib_stream(std::ifstream& in, uint64_t offset, uint64_t length, int index,
                       const std::string& path) {
  z_stream zs{};
  GPULAB_CHECK(inflateInit(&zs) == Z_OK, ErrorKind::kInternal, "zlib initialisation failed");
  std::vector<char> input(1 << 20);
  std::vector<unsigned char> output(1 << 20);
  in.seekg(static_cast<std::streamoff>(offset + 8));
  uint64_t left = length;
  int rc = Z_OK;
  while (true) {
    if (zs.avail_in == 0 && left > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, input.size()));
      in.read(input.data(), static_cast<std::streamsize>(n));
      if (!in.good()) break;
      zs.next_in = reinterpret_cast<Bytef*>(input.data());
      zs.avail_in = static_cast<uInt>(n);
      left -= n;
    }
    zs.next_out = output.data();
    zs.avail_out = static_cast<uInt>(output.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END || (rc != Z_OK && rc != Z_BUF_ERROR)) break;
    if (zs.avail_in == 0 && left == 0 && zs.avail_out != 0) break;  // no more input or output
  }
  const std::string detail = rc == Z_STREAM_END  ? ""
                             : zs.msg != nullptr ? zs.msg
                                                 : "the compressed data ends early";
  inflateEnd(&zs);
  GPULAB_CHECK(in.good(), ErrorKind::kIo, "cannot read '{}' at byte {}", path, offset);
  GPULAB_CHECK(rc == Z_STREAM_END, ErrorKind::kCorruptData,
               "'{}' is corrupt: variable {} at byte {} does not decompress ({}) — download it "
               "again",
               path, index, offset, detail);
}

// MAT v5/v7: a 128-byte header (text, subsystem offset, version, byte-order
// mark) and top-level elements, each an 8-byte tag (type, byte count) and data.
// Returns the header's version: 0x0100 (v5/v7) or 0x0200 (v7.3).
uint32_t check_mat_container(const std::string& path) {
  const uint64_t size = fs::file_size(path);
  std::ifstream in(path, std::ios::binary);
  GPULAB_CHECK(in.good(), ErrorKind::kIo, "cannot open '{}' for reading", path);
  std::array<unsigned char, 128> header{};
  in.read(reinterpret_cast<char*>(header.data()), header.size());
  GPULAB_CHECK(size >= header.size() && in.good(), ErrorKind::kCorruptData,
               "'{}' is not a MAT file or is truncated: {} bytes, shorter than the 128-byte "
               "MAT-file header",
               path, size);
  const bool little = header[126] == 'I' && header[127] == 'M';
  const bool big = header[126] == 'M' && header[127] == 'I';
  GPULAB_CHECK(little || big, ErrorKind::kCorruptData,
               "'{}' is not a MATLAB MAT file (v5, v7 or v7.3): no 'IM' byte-order mark at byte "
               "126; it begins \"{}\" — is it an HTML page or a partial download?",
               path, printable_prefix(header.data(), 40));
  auto u16 = [&](const unsigned char* p) -> uint32_t {
    return little ? p[0] | p[1] << 8 : p[0] << 8 | p[1];
  };
  auto u32 = [&](const unsigned char* p) -> uint32_t {
    return little ? u16(p) | u16(p + 2) << 16 : u16(p) << 16 | u16(p + 2);
  };
  const uint32_t version = u16(&header[124]);
  if (version == 0x0200) {
    check_hdf5_end(in, size, path);
    return version;
  }
  GPULAB_CHECK(version == 0x0100, ErrorKind::kCorruptData,
               "'{}': unknown MAT-file version 0x{:04x} (0x0100 is v5/v7, 0x0200 is v7.3)", path,
               version);
  constexpr uint32_t kMiMatrix = 14;
  constexpr uint32_t kMiCompressed = 15;
  uint64_t offset = header.size();
  for (int index = 1; offset < size; ++index) {
    std::array<unsigned char, 8> tag{};
    if (offset + tag.size() <= size) {
      in.seekg(static_cast<std::streamoff>(offset));
      in.read(reinterpret_cast<char*>(tag.data()), tag.size());
      GPULAB_CHECK(in.good(), ErrorKind::kIo, "cannot read '{}' at byte {}", path, offset);
    }
    const uint32_t type = u32(&tag[0]);
    // A small element packs its byte count into the type's upper half and its
    // data into the tag itself.
    const uint64_t end = offset + tag.size() + ((type >> 16) != 0 ? 0 : u32(&tag[4]));
    GPULAB_CHECK(offset + tag.size() <= size && end <= size, ErrorKind::kCorruptData,
                 "'{}' is truncated: variable {} at byte {} needs {} bytes, but the file ends at "
                 "byte {} — download it again",
                 path, index, offset, end - offset, size);
    if (type == kMiCompressed) {
      check_zlib_stream(in, offset, end - offset - tag.size(), index, path);
    }
    offset = type == kMiMatrix ? (end + 7) / 8 * 8 : end;  // matrices are 8-byte aligned
  }
  return version;
}

const char* class_name(matio_classes c) {
  switch (c) {
    case MAT_C_EMPTY:
      return "empty";
    case MAT_C_CELL:
      return "cell";
    case MAT_C_STRUCT:
      return "struct";
    case MAT_C_OBJECT:
      return "object";
    case MAT_C_CHAR:
      return "char";
    case MAT_C_SPARSE:
      return "sparse";
    case MAT_C_DOUBLE:
      return "double";
    case MAT_C_SINGLE:
      return "single";
    case MAT_C_INT8:
      return "int8";
    case MAT_C_UINT8:
      return "uint8";
    case MAT_C_INT16:
      return "int16";
    case MAT_C_UINT16:
      return "uint16";
    case MAT_C_INT32:
      return "int32";
    case MAT_C_UINT32:
      return "uint32";
    case MAT_C_INT64:
      return "int64";
    case MAT_C_UINT64:
      return "uint64";
    case MAT_C_FUNCTION:
      return "function";
    case MAT_C_OPAQUE:
      return "opaque";
  }
  return "unknown";
}

template <typename T>
void convert(const void* data, float* out, size_t n) {
  const T* in = static_cast<const T*>(data);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]);
}

// Code point `i` of a char array; MATLAB stores chars as UTF-16 units, matio
// as 1, 2 or 4 bytes each.
uint32_t char_at(const matvar_t* var, size_t i) {
  const size_t width = var->data_size > 0 ? var->data_size : var->nbytes / mat_numel(var);
  switch (width) {
    case 1:
      return static_cast<const uint8_t*>(var->data)[i];
    case 2:
      return static_cast<const uint16_t*>(var->data)[i];
    default:
      return static_cast<const uint32_t*>(var->data)[i];
  }
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

void check_char(const matvar_t* var, const std::string& what, const std::string& path) {
  GPULAB_CHECK(var != nullptr, ErrorKind::kCorruptData, "'{}': {} is missing", path, what);
  GPULAB_CHECK(var->class_type == MAT_C_CHAR || mat_numel(var) == 0, ErrorKind::kCorruptData,
               "'{}': {} must be text (char), found {}", path, what, mat_describe(var));
  GPULAB_CHECK(mat_numel(var) == 0 || var->data != nullptr, ErrorKind::kCorruptData,
               "'{}': {} has no data", path, what);
}

}  // namespace

MatFilePtr open_mat_file(const std::string& path) {
  GPULAB_CHECK(fs::exists(path), ErrorKind::kNotFound, "MAT file '{}' does not exist", path);
  GPULAB_CHECK(fs::is_regular_file(path), ErrorKind::kCorruptData,
               "'{}' is not a file (a MAT file was expected)", path);
  const uint32_t version = check_mat_container(path);
  install_matio_log();
  MatFilePtr mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  // Insist on the format the header names, whatever matio fell back to.
  const int expected = version == 0x0200 ? MAT_FT_MAT73 : MAT_FT_MAT5;
  GPULAB_CHECK(mat != nullptr && Mat_GetVersion(mat.get()) == expected, ErrorKind::kCorruptData,
               "'{}' cannot be opened as a MAT {} file{} — is it truncated or corrupt?", path,
               version == 0x0200 ? "v7.3 (HDF5)" : "v5/v7", matio_said());
  return mat;
}

std::vector<std::string> mat_variable_names(mat_t* mat, const std::string& path) {
  install_matio_log();
  size_t n = 0;
  char** names = Mat_GetDir(mat, &n);
  GPULAB_CHECK(names != nullptr || n == 0, ErrorKind::kCorruptData,
               "'{}': cannot list the MAT file's variables{}", path, matio_said());
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(names[i] ? names[i] : "");
  return out;
}

MatVarPtr read_mat_variable(mat_t* mat, const std::string& name, const std::string& path) {
  install_matio_log();
  MatVarPtr var(Mat_VarRead(mat, name.c_str()));
  GPULAB_CHECK(var != nullptr, ErrorKind::kCorruptData,
               "'{}': cannot read variable '{}'{} — is the file truncated or corrupt?", path, name,
               matio_said());
  return var;
}

size_t mat_numel(const matvar_t* var) {
  if (var == nullptr || var->rank <= 0 || var->dims == nullptr) return 0;
  size_t n = 1;
  for (int i = 0; i < var->rank; ++i) n *= var->dims[i];
  return n;
}

std::string mat_describe(const matvar_t* var) {
  if (var == nullptr) return "nothing";
  std::vector<size_t> dims(var->dims, var->dims + std::max(var->rank, 0));
  return fmt::format("{} {}{}", fmt::join(dims, "x"), var->isComplex ? "complex " : "",
                     class_name(var->class_type));
}

matvar_t* mat_field(matvar_t* var, const char* name) {
  if (var == nullptr || var->class_type != MAT_C_STRUCT || mat_numel(var) != 1) return nullptr;
  return Mat_VarGetStructFieldByName(var, name, 0);
}

matvar_t* mat_cell(matvar_t* cell, size_t index) {
  if (cell == nullptr || cell->class_type != MAT_C_CELL || index >= mat_numel(cell)) {
    return nullptr;
  }
  return Mat_VarGetCell(cell, static_cast<int>(index));
}

std::string mat_string(matvar_t* var, const std::string& what, const std::string& path) {
  check_char(var, what, path);
  std::string out;
  for (size_t i = 0, n = mat_numel(var); i < n; ++i) append_utf8(out, char_at(var, i));
  return trim_right(out);
}

std::vector<std::string> mat_char_rows(matvar_t* var, const std::string& what,
                                       const std::string& path) {
  check_char(var, what, path);
  const size_t n = mat_numel(var);
  if (n == 0) return {};
  const size_t rows = var->dims[0];
  std::vector<std::string> out(rows);
  for (size_t i = 0; i < n; ++i) append_utf8(out[i % rows], char_at(var, i));
  for (auto& row : out) row = trim_right(row);
  return out;
}

at::Tensor mat_tensor(matvar_t* var, const std::string& what, const std::string& path) {
  GPULAB_CHECK(var != nullptr, ErrorKind::kCorruptData, "'{}': {} is missing", path, what);
  GPULAB_CHECK(var->class_type >= MAT_C_DOUBLE && var->class_type <= MAT_C_UINT64 &&
                   !var->isComplex && var->rank >= 1,
               ErrorKind::kCorruptData, "'{}': {} must be a real numeric array, found {}", path,
               what, mat_describe(var));
  const size_t n = mat_numel(var);
  GPULAB_CHECK(n == 0 || var->data != nullptr, ErrorKind::kCorruptData, "'{}': {} ({}) has no data",
               path, what, mat_describe(var));
  // MATLAB is column-major: the buffer is a row-major tensor of the reversed
  // dimensions, and reversing them back indexes it like MATLAB.
  std::vector<int64_t> reversed(var->dims, var->dims + var->rank);
  std::reverse(reversed.begin(), reversed.end());
  at::Tensor buffer = torch::empty(reversed, torch::kFloat32);
  float* out = buffer.data_ptr<float>();
  switch (var->class_type) {
    case MAT_C_DOUBLE:
      convert<double>(var->data, out, n);
      break;
    case MAT_C_SINGLE:
      convert<float>(var->data, out, n);
      break;
    case MAT_C_INT8:
      convert<int8_t>(var->data, out, n);
      break;
    case MAT_C_UINT8:
      convert<uint8_t>(var->data, out, n);
      break;
    case MAT_C_INT16:
      convert<int16_t>(var->data, out, n);
      break;
    case MAT_C_UINT16:
      convert<uint16_t>(var->data, out, n);
      break;
    case MAT_C_INT32:
      convert<int32_t>(var->data, out, n);
      break;
    case MAT_C_UINT32:
      convert<uint32_t>(var->data, out, n);
      break;
    case MAT_C_INT64:
      convert<int64_t>(var->data, out, n);
      break;
    case MAT_C_UINT64:
      convert<uint64_t>(var->data, out, n);
      break;
    default:
      GPULAB_FAIL(ErrorKind::kInternal, "unhandled MAT class {}", var->class_type);
  }
  std::vector<int64_t> order(reversed.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(order.size() - 1 - i);
  return buffer.permute(order);
}

}  // namespace gpulab::models::detail
