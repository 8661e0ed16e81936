// Format detection by magic bytes, then one reader per format.
#include "gpulab/models/weight_file.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "gpulab/core/error.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/models/torchscript_file.h"
#ifdef GPULAB_WITH_MATIO
#include "gpulab/models/matconvnet.h"
#endif

namespace gpulab::models {
namespace {

std::string file_head(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  GPULAB_CHECK(in.good(), ErrorKind::kIo, "cannot open weight file '{}'", path);
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

// torch.save() writes a pickle (inside a zip archive since PyTorch 1.6),
// which only Python can read safely.
constexpr const char* kPickleHint =
    "if it was written by torch.save() (a pickled state dict, .pth), convert it in Python: "
    "from safetensors.torch import save_file; "
    "save_file(torch.load('FILE.pth'), 'FILE.safetensors')";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// safetensors opens with a little-endian u64 header length, then '{'.
bool looks_like_safetensors(const std::string& head) {
  return head.size() >= 9 && head[8] == '{';
}

WeightFile read_safetensors_weights(const std::string& path) {
  WeightFile w;
  w.path = path;
  SafetensorsContent content = load_safetensors(path);
  auto gpulab = content.metadata.find("gpulab");
  if (gpulab != content.metadata.end()) {
    w.format = "gpulab";
    w.metadata = ModelMetadata::parse(gpulab->second, path);
  } else {
    w.format = "safetensors";
    content.tensors = strip_module_prefix(std::move(content.tensors));
  }
  w.tensors = std::move(content.tensors);
  return w;
}

WeightFile read_torchscript_weights(const std::string& path) {
  std::unordered_map<std::string, std::string> extra = {{"gpulab.json", ""}};  // gpulab export
  torch::jit::Module module = load_torchscript_file(path, &extra);
  WeightFile w;
  w.path = path;
  w.format = "torchscript";
  for (const auto& p : module.named_parameters(/*recurse=*/true))
    w.tensors[p.name] = p.value.detach();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) w.tensors[b.name] = b.value.detach();
  GPULAB_CHECK(!w.tensors.empty(), ErrorKind::kCorruptData,
               "TorchScript file '{}' holds no parameters or buffers", path);
  if (!extra["gpulab.json"].empty()) w.metadata = ModelMetadata::parse(extra["gpulab.json"], path);
  return w;
}

#ifdef GPULAB_WITH_MATIO
WeightFile read_matconvnet_weights(const std::string& path) {
  MatConvNetImport imported = load_matconvnet_vgg(path);
  WeightFile w;
  w.path = path;
  w.format = "matconvnet";
  w.tensors = std::move(imported.tensors);
  ModelMetadata m;
  m.config.arch = imported.arch;
  m.config.options = imported.options;
  m.config.num_classes = imported.num_classes;
  m.config.in_channels = 3;
  m.config.height = imported.input_height;
  m.config.width = imported.input_width;
  m.mean = imported.mean;
  m.std = imported.std;
  m.labels = labels_json(imported.class_names, m.config.num_classes);
  w.metadata = m;
  return w;
}
#endif

}  // namespace

std::map<std::string, at::Tensor> strip_module_prefix(std::map<std::string, at::Tensor> tensors) {
  const std::string prefix = "module.";
  for (const auto& kv : tensors) {
    if (!starts_with(kv.first, prefix)) return tensors;
  }
  std::map<std::string, at::Tensor> stripped;
  for (auto& [name, tensor] : tensors) stripped[name.substr(prefix.size())] = std::move(tensor);
  return stripped;
}

WeightFile read_weight_file(const std::string& path) {
  GPULAB_CHECK(std::filesystem::is_regular_file(path), ErrorKind::kNotFound,
               "weight file '{}' does not exist", path);
  const std::string head = file_head(path, 128);
  GPULAB_CHECK(!head.empty(), ErrorKind::kCorruptData, "weight file '{}' is empty", path);
  if (looks_like_safetensors(head)) return read_safetensors_weights(path);
  if (starts_with(head, "PK\x03\x04")) return read_torchscript_weights(path);
  if (starts_with(head, "MATLAB 5.0 MAT-file") || starts_with(head, "MATLAB 7.3 MAT-file") ||
      starts_with(head, "\x89HDF")) {
#ifdef GPULAB_WITH_MATIO
    return read_matconvnet_weights(path);
#else
    GPULAB_FAIL(ErrorKind::kUnavailable,
                "'{}' is a MATLAB file; this gpulab was built without matio "
                "(-DGPULAB_WITH_MATIO=ON reads MatConvNet networks)",
                path);
#endif
  }
  // A pickle opens with PROTO (0x80) and its version; legacy torch.save files
  // with the magic number pickled first.
  const bool pickle = head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 &&
                      head[1] >= 2 && head[1] <= 5;
  GPULAB_FAIL(ErrorKind::kCorruptData,
              "'{}' is not a weight file gpulab reads; expected safetensors (.safetensors), "
              "TorchScript (.pt) or MatConvNet (.mat){}",
              path, pickle ? std::string("; it is a Python pickle: ") + kPickleHint : "");
}

}  // namespace gpulab::models
