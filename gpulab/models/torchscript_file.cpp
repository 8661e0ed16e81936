// TorchScript archive loading and the diagnosis of a file it fails on.
#include "gpulab/models/torchscript_file.h"

#include <torch/script.h>

#include <filesystem>
#include <fstream>

#include "gpulab/core/error.h"

namespace gpulab::models {
namespace {

// torch.save() writes a pickle (inside a zip archive since PyTorch 1.6),
// which only Python can read safely.
constexpr const char* kPickleHint =
    "if it was written by torch.save() (a pickled state dict, .pth), convert it in Python: "
    "from safetensors.torch import save_file; "
    "save_file(torch.load('FILE.pth'), 'FILE.safetensors')";

// The zip end-of-central-directory record: 22 bytes plus a comment of up to
// 64 KiB, at the very end of the archive.
constexpr size_t kEocdSize = 22;
constexpr size_t kMaxComment = 0xffff;
// The central directory (the archive's list of file names) is read from this
// much of the archive's end: ample for the few hundred entries of a network.
constexpr size_t kTailBytes = (4u << 20) + kEocdSize + kMaxComment;

uint32_t le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// The last `n` bytes of the file (all of it when shorter) and its size.
std::string file_tail(const std::string& path, size_t n, uint64_t& size) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  GPULAB_CHECK(in.good(), ErrorKind::kIo, "cannot open TorchScript file '{}'", path);
  size = static_cast<uint64_t>(in.tellg());
  const uint64_t start = size > n ? size - n : 0;
  in.seekg(static_cast<std::streamoff>(start));
  std::string tail(size - start, '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return tail;
}

bool holds_torchscript_code(const std::string& tail) {
  return tail.find("/code/") != std::string::npos ||
         tail.find("constants.pkl") != std::string::npos;
}

}  // namespace

std::string zip_damage(const std::string& path) {
  uint64_t size = 0;
  const std::string tail = file_tail(path, kEocdSize + kMaxComment, size);
  const size_t eocd = tail.size() < kEocdSize ? std::string::npos
                                              : tail.rfind("PK\x05\x06", tail.size() - kEocdSize);
  if (eocd == std::string::npos) {
    return "its zip end-of-archive record is missing, so it was cut short (an interrupted "
           "copy, download or save?)";
  }
  const uint64_t eocd_at = size - tail.size() + eocd;
  const uint64_t cd_size = le32(tail, eocd + 12);
  const uint64_t cd_offset = le32(tail, eocd + 16);
  if (cd_offset == 0xffffffffu) return "";  // ZIP64: the record points elsewhere
  if (cd_offset + cd_size > eocd_at) {
    return fmt::format(
        "its central directory ({} bytes at offset {}) lies beyond the end-of-archive record at "
        "{}: the file is damaged",
        cd_size, cd_offset, eocd_at);
  }
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(cd_offset));
  std::string sig(4, '\0');
  in.read(sig.data(), 4);
  if (cd_size > 0 && sig != "PK\x01\x02") {
    return fmt::format(
        "no central directory at offset {}, where its end-of-archive record "
        "says it begins: the file is truncated or damaged",
        cd_offset);
  }
  return "";
}

torch::jit::Module load_torchscript_file(const std::string& path,
                                         std::unordered_map<std::string, std::string>* extra) {
  GPULAB_CHECK(std::filesystem::is_regular_file(path), ErrorKind::kNotFound,
               "TorchScript file '{}' does not exist", path);
  torch::jit::ExtraFilesMap none;
  try {
    return torch::jit::load(path, torch::kCPU, extra != nullptr ? *extra : none);
  } catch (const c10::Error& e) {
    const std::string reason = e.what_without_backtrace();
    std::ifstream in(path, std::ios::binary);
    std::string magic(4, '\0');
    in.read(magic.data(), 4);
    GPULAB_CHECK(magic == "PK\x03\x04", ErrorKind::kCorruptData,
                 "'{}' is not a TorchScript file: TorchScript archives are zip files, and it is "
                 "none",
                 path);
    const std::string damage = zip_damage(path);
    GPULAB_CHECK(damage.empty(), ErrorKind::kCorruptData,
                 "TorchScript file '{}' is truncated or damaged: {}; copy or export it again", path,
                 damage);
    uint64_t size = 0;
    GPULAB_CHECK(!holds_torchscript_code(file_tail(path, kTailBytes, size)),
                 ErrorKind::kCorruptData,
                 "TorchScript file '{}' is damaged or needs a newer LibTorch: {}", path, reason);
    GPULAB_FAIL(ErrorKind::kCorruptData,
                "'{}' is a zip archive but not a TorchScript file ({}); {}", path, reason,
                kPickleHint);
  }
}

}  // namespace gpulab::models
