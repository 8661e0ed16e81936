// Format detection by magic bytes, then one reader per format (torch.save's
// through a rewrite of its pickle that LibTorch's unpickler can run).
#include "gpulab/models/weight_file.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

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

// A pickle that torch.save() did not write (pickle.dump of a state dict?).
constexpr const char* kPickleHint =
    "gpulab reads state dicts that torch.save() wrote (PyTorch 1.6 or newer): "
    "torch.save(model.state_dict(), 'FILE.pth')";

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

// torch.save() files (.pth). Since PyTorch 1.6 they are zip archives holding
// the pickled object as <name>/data.pkl and each tensor storage as
// <name>/data/<key>. LibTorch's unpickler (torch::pickle_load's) reads the
// tensors but makes every collections.OrderedDict None -- and state_dict()
// returns one -- then fails on the BUILD that restores its _metadata. So the
// pickle is rewritten before it runs: OrderedDict() becomes an empty dict,
// and BUILD(object, state) the tuple (object, state, kBuildMarker), which
// unwrap_build() turns back into the object.
constexpr const char* kBuildMarker = "__gpulab_pickle_build__";

// A pre-1.6 torch.save file: a bare pickle opening with PROTO 2 and a
// 10-byte LONG1, torch's magic number 0x1950a86a20f9469cfc6c.
constexpr const char* kLegacyTorchSaveMagic = "\x80\x02\x8a\x0a";

std::string resave_hint(const std::string& path) {
  return fmt::format(
      "save it again with PyTorch 1.6 or newer: python3 -c \"import torch; "
      "torch.save(torch.load('{}', map_location='cpu'), 'new.pth')\"",
      path);
}

uint32_t le_uint(const std::string& s, size_t at, size_t bytes) {
  uint32_t v = 0;
  for (size_t k = bytes; k-- > 0;) v = (v << 8) | static_cast<unsigned char>(s[at + k]);
  return v;
}

// The rewrite described above, opcode by opcode (protocol 2, as torch.save
// writes by default). A shadow stack keeps where in `out` each item on the
// unpickler's stack begins, so that SETITEM and APPEND, which LibTorch 1.13's
// unpickler lacks, become MARK ... SETITEMS and MARK ... APPENDS.
std::string rewrite_torch_save_pickle(const std::string& pkl, const std::string& path) {
  std::string out;
  out.reserve(pkl.size() + 64);
  std::vector<size_t> stack;                     // where each item begins in `out`
  std::vector<std::pair<size_t, size_t>> marks;  // (stack size, position in `out`)
  std::set<uint32_t> class_memo;                 // memo ids of the (dropped) OrderedDict class
  bool class_on_top = false;                     // the OrderedDict class was the last thing pushed
  size_t i = 0;
  auto fail = [&](const std::string& what) {
    GPULAB_FAIL(ErrorKind::kCorruptData,
                "torch.save file '{}': {} at byte {} of its pickle (data.pkl); gpulab reads "
                "state dicts saved with torch.save(model.state_dict(), FILE) and the default "
                "pickle protocol 2",
                path, what, i);
  };
  auto need = [&](size_t n) {
    if (pkl.size() - i < n) fail("the pickle ends early");
  };
  // Pops n items; returns where the deepest began.
  auto pop = [&](size_t n) {
    if (stack.size() < n) fail("an opcode finds too few items on the stack");
    const size_t start = stack[stack.size() - n];
    stack.resize(stack.size() - n);
    return start;
  };
  auto pop_mark = [&] {
    if (marks.empty() || marks.back().first > stack.size()) fail("an opcode finds no MARK");
    const size_t start = marks.back().second;
    stack.resize(marks.back().first);
    marks.pop_back();
    return start;
  };
  while (true) {
    need(1);
    const size_t at = i;
    const char op = pkl[i++];
    if (class_on_top && op != 'q' && op != 'r' && op != ')') fail("OrderedDict is used oddly");
    const size_t here = out.size();
    size_t arg = 0;  // argument bytes after the opcode
    switch (op) {
      case '\x80':  // PROTO
        arg = 1;
        break;
      case 'c': {  // GLOBAL "module\nname\n"
        const size_t module_end = pkl.find('\n', i);
        const size_t end =
            module_end == std::string::npos ? module_end : pkl.find('\n', module_end + 1);
        if (end == std::string::npos) fail("a GLOBAL without its names");
        if (pkl.compare(i, end - i, "collections\nOrderedDict") == 0) {
          i = end + 1;
          class_on_top = true;
          continue;
        }
        arg = end + 1 - i;
        stack.push_back(here);
        break;
      }
      case 'q':    // BINPUT
      case 'r': {  // LONG_BINPUT
        const size_t n = op == 'q' ? 1 : 4;
        need(n);
        if (class_on_top) {
          class_memo.insert(le_uint(pkl, i, n));
          i += n;
          continue;
        }
        arg = n;
        break;
      }
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        const size_t n = op == 'h' ? 1 : 4;
        need(n);
        if (class_memo.count(le_uint(pkl, i, n))) {
          i += n;
          class_on_top = true;
          continue;
        }
        arg = n;
        stack.push_back(here);
        break;
      }
      case ')':  // EMPTY_TUPLE; after the class, REDUCE follows: OrderedDict()
        stack.push_back(here);
        if (class_on_top) {
          need(1);
          if (pkl[i] != 'R') fail("OrderedDict is called with arguments");
          ++i;
          out += '}';  // EMPTY_DICT
          class_on_top = false;
          continue;
        }
        break;
      case '(':  // MARK
        marks.emplace_back(stack.size(), here);
        break;
      case 't':  // TUPLE
      case 'd':  // DICT
      case 'l':  // LIST
        stack.push_back(pop_mark());
        break;
      case '\x85':  // TUPLE1
      case '\x86':  // TUPLE2
      case '\x87':  // TUPLE3
        stack.push_back(pop(static_cast<size_t>(static_cast<unsigned char>(op) - 0x84)));
        break;
      case 'R':     // REDUCE
      case '\x81':  // NEWOBJ
        stack.push_back(pop(2));
        break;
      case 'Q':  // BINPERSID
        stack.push_back(pop(1));
        break;
      case 'b': {  // BUILD -> (object, state, marker): BINUNICODE marker, TUPLE3
        stack.push_back(pop(2));
        const std::string marker = kBuildMarker;
        out += 'X';
        for (int k = 0; k < 4; ++k) out += static_cast<char>((marker.size() >> (8 * k)) & 0xff);
        out += marker;
        out += '\x87';
        continue;
      }
      case 's':    // SETITEM: dict key value -> dict MARK key value SETITEMS
      case 'a': {  // APPEND: list item -> list MARK item APPENDS
        const size_t n = op == 's' ? 2 : 1;
        if (stack.size() < n + 1) fail("an opcode finds too few items on the stack");
        out.insert(pop(n), 1, '(');
        out += op == 's' ? 'u' : 'e';
        continue;
      }
      case 'u':  // SETITEMS
      case 'e':  // APPENDS
        pop_mark();
        break;
      case '0':  // POP
        pop(1);
        break;
      case '.':  // STOP
        out += op;
        return out;
      case 'K':  // BININT1
        arg = 1;
        stack.push_back(here);
        break;
      case 'M':  // BININT2
        arg = 2;
        stack.push_back(here);
        break;
      case 'J':  // BININT
        arg = 4;
        stack.push_back(here);
        break;
      case 'G':  // BINFLOAT
        arg = 8;
        stack.push_back(here);
        break;
      case '\x8a':  // LONG1
      case 'U':     // SHORT_BINSTRING
      case 'C':     // SHORT_BINBYTES
        need(1);
        arg = 1 + static_cast<unsigned char>(pkl[i]);
        stack.push_back(here);
        break;
      case 'X':  // BINUNICODE
      case 'T':  // BINSTRING
      case 'B':  // BINBYTES
        need(4);
        arg = 4 + static_cast<size_t>(le_uint(pkl, i, 4));
        stack.push_back(here);
        break;
      case '}':     // EMPTY_DICT
      case ']':     // EMPTY_LIST
      case 'N':     // NONE
      case '\x88':  // NEWTRUE
      case '\x89':  // NEWFALSE
        stack.push_back(here);
        break;
      default:
        fail(fmt::format("opcode 0x{:02x}", static_cast<unsigned char>(op)));
    }
    need(arg);
    out.append(pkl, at, 1 + arg);
    i += arg;
  }
}

// The object a BUILD was applied to (see rewrite_torch_save_pickle), else `v`.
c10::IValue unwrap_build(const c10::IValue& v) {
  if (!v.isTuple()) return v;
  const auto& e = v.toTupleRef().elements();
  if (e.size() == 3 && e[2].isString() && e[2].toStringRef() == kBuildMarker) {
    return unwrap_build(e[0]);
  }
  return v;
}

// A zip archive written by torch.save(): a pickle without TorchScript code.
bool is_torch_save_archive(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (!reader.hasRecord("data.pkl") || reader.hasRecord("constants.pkl")) return false;
    const auto records = reader.getAllRecords();
    return std::none_of(records.begin(), records.end(),
                        [](const std::string& r) { return r.rfind("code/", 0) == 0; });
  } catch (const c10::Error&) {
    return false;  // damaged: the TorchScript reader says how
  }
}

c10::IValue unpickle_torch_save(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    const auto record = reader.getRecord("data.pkl");
    const std::string pkl = rewrite_torch_save_pickle(
        std::string(static_cast<const char*>(std::get<0>(record).get()), std::get<1>(record)),
        path);
    size_t pos = 0;
    auto read = [&pkl, &pos](char* buffer, size_t n) {
      n = std::min(n, pkl.size() - pos);
      std::memcpy(buffer, pkl.data() + pos, n);
      pos += n;
      return n;
    };
    std::function<at::DataPtr(const std::string&)> read_record = [&reader](const std::string& key) {
      return std::get<0>(reader.getRecord("data/" + key));
    };
    // Tensors saved from a GPU (location "cuda:0") load onto the CPU.
    torch::jit::Unpickler unpickler(read, torch::jit::TypeResolver(), torch::jit::ObjLoader(),
                                    read_record, c10::optional<at::Device>(at::kCPU));
    return unpickler.parse_ivalue();
  } catch (const Error&) {
    throw;  // the rewrite's own, which names the file
  } catch (const c10::Error& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData,
                "torch.save file '{}' cannot be read: {}; gpulab reads state dicts saved with "
                "torch.save(model.state_dict(), FILE)",
                path, e.what_without_backtrace());
  } catch (const std::exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "torch.save file '{}' cannot be read: {}", path, e.what());
  }
}

// The state dict in a torch.save file: the saved dict of tensors, or a
// training checkpoint's "state_dict" entry (Eromera/erfnet_pytorch's
// checkpoint.pth.tar, torchvision's reference scripts).
std::map<std::string, at::Tensor> torch_save_state_dict(const c10::IValue& saved,
                                                        const std::string& path) {
  c10::IValue dict = unwrap_build(saved);
  GPULAB_CHECK(dict.isGenericDict(), ErrorKind::kCorruptData,
               "torch.save file '{}' holds a {}, not a state dict; save model.state_dict()", path,
               dict.tagKind());
  for (const auto& kv : dict.toGenericDict()) {
    if (kv.key().isString() && kv.key().toStringRef() == "state_dict" &&
        unwrap_build(kv.value()).isGenericDict()) {
      dict = unwrap_build(kv.value());
      break;
    }
  }
  std::map<std::string, at::Tensor> tensors;
  for (const auto& kv : dict.toGenericDict()) {
    const c10::IValue value = unwrap_build(kv.value());
    GPULAB_CHECK(kv.key().isString() && value.isTensor(), ErrorKind::kCorruptData,
                 "torch.save file '{}' is not a state dict: its entry {} is a {}, not a tensor; "
                 "save model.state_dict()",
                 path,
                 kv.key().isString() ? "'" + kv.key().toStringRef() + "'" : kv.key().tagKind(),
                 value.tagKind());
    tensors[kv.key().toStringRef()] = value.toTensor();
  }
  GPULAB_CHECK(!tensors.empty(), ErrorKind::kCorruptData, "torch.save file '{}' holds no tensors",
               path);
  return tensors;
}

WeightFile read_torch_save_weights(const std::string& path) {
  WeightFile w;
  w.path = path;
  w.format = "pytorch";
  w.tensors = strip_module_prefix(torch_save_state_dict(unpickle_torch_save(path), path));
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
  if (starts_with(head, "PK\x03\x04")) {
    return is_torch_save_archive(path) ? read_torch_save_weights(path)
                                       : read_torchscript_weights(path);
  }
  GPULAB_CHECK(!starts_with(head, kLegacyTorchSaveMagic), ErrorKind::kCorruptData,
               "'{}' is a torch.save() file in the legacy format of PyTorch before 1.6 (a bare "
               "pickle, not a zip archive), which gpulab does not read; {}",
               path, resave_hint(path));
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
  // A pickle opens with PROTO (0x80) and its version.
  const bool pickle = head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 &&
                      head[1] >= 2 && head[1] <= 5;
  GPULAB_FAIL(ErrorKind::kCorruptData,
              "'{}' is not a weight file gpulab reads; expected safetensors (.safetensors), "
              "TorchScript (.pt), torch.save() (.pth) or MatConvNet (.mat){}",
              path, pickle ? std::string("; it is a Python pickle: ") + kPickleHint : "");
}

}  // namespace gpulab::models
