// bench_model_throughput: forward (inference) and forward+backward (training
// step) images/s of the model zoo on a fixed random batch, on the CPU or a GPU:
// the classifiers, and the segmentation networks (erfnet, deeplabv3plus), whose
// [N, classes, H, W] logits train with a per-pixel cross-entropy.
//
//   bench_model_throughput [--models resnet18,alexnet,vgg16] [--batch-size 16]
//       [--threads 2] [--size 224 | --height H --width W] [--num-classes N]
//       [--iters 10] [--warmup 2]
//       [--modes forward,train] [--seed 0] [--device cpu|cuda[:N]]
//       [--precisions fp32,bf16] [--memory-format contiguous|channels_last]
//       [--peak-tflops 990] [--json FILE]
//
// Protocol (STYLE.md 16): warm up, validate once (finite outputs; in training
// the loss on the fixed batch falls from warm-up step 1 to step 2, which
// draw the same dropout masks), time
// --iters iterations one by one, write JSON. On a GPU every timed iteration
// ends with the device synchronised (training reads its loss on the host),
// and the caching allocator's peak memory is reported. The PyTorch eager peer
// is bench/peers/model_throughput.py; bench/run_model_benchmarks.sh (CPU) and
// scripts/device-check.sh (GPU) run both.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_device.h"
#include "bench/bench_env.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/compat.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/core/seed.h"
#include "gpulab/core/stopwatch.h"
#include "gpulab/models/registry.h"
#include "gpulab/train/foreach_sgd.h"

namespace {

using gpulab::ErrorKind;
using gpulab::bench::cpu_model;
using gpulab::bench::git_commit;
using gpulab::bench::host_name;
using gpulab::bench::median;

constexpr int64_t kNumClasses = 1000;  // classifiers
constexpr int64_t kInChannels = 3;
constexpr double kLearnRate = 0.01;
constexpr double kMomentum = 0.9;
// Training validates on warm-up steps 1 and 2, so it warms up at least this.
constexpr int64_t kMinTrainWarmup = 2;

struct Flags {
  std::vector<std::string> models = {"resnet18", "alexnet", "vgg16"};
  int64_t batch_size = 16;
  int threads = 2;
  int64_t size = 224;
  int64_t height = 0, width = 0;  // 0: --size
  int64_t num_classes = 0;        // 0: per model (default_num_classes)
  int64_t iters = 10;
  int64_t warmup = 2;
  std::vector<std::string> modes = {"forward", "train"};
  int64_t seed = 0;
  std::string device = "cpu";
  std::vector<std::string> precisions = {"fp32"};
  std::string memory_format = "contiguous";
  bool cudnn_benchmark = true;  // as the trainer on a GPU
  double peak_tflops = 990;     // H200 SXM dense bf16, the datasheet's figure
  std::string json;
};

// Forward GFLOP per image at 224x224 (2 x torchvision's multiply-adds; the
// issue's 3.6 for ResNet-18); -1 when not listed. A training step is 3x.
double forward_gflop_224(const std::string& arch) {
  static const std::map<std::string, double> gflop = {
      {"alexnet", 1.43},   {"resnet18", 3.6},   {"resnet34", 7.33}, {"resnet50", 8.18},
      {"resnet101", 15.6}, {"resnet152", 23.0}, {"vgg11", 15.2},    {"vgg13", 22.6},
      {"vgg16", 30.9},     {"vgg19", 39.3}};
  const auto it = gflop.find(arch);
  return it == gflop.end() ? -1 : it->second;
}

// Forward GFLOP per megapixel of input (2 x the convolutions' multiply-adds,
// counted with forward hooks on bench/peers/segmentation_models.py at the
// default class counts, output stride 16); -1 when not listed.
double forward_gflop_per_megapixel(const std::string& arch) {
  static const std::map<std::string, double> gflop = {{"erfnet", 101.52},
                                                      {"deeplabv3plus", 314.18}};
  const auto it = gflop.find(arch);
  return it == gflop.end() ? -1 : it->second;
}

// The class count a model is benchmarked with unless --num-classes says
// otherwise: the 20 (Cityscapes' 19 + void) for ERFNet, 11 (CamVid)
// for DeepLab v3+, ImageNet's 1000 for the classifiers.
int64_t default_num_classes(const std::string& arch) {
  if (arch == "erfnet") return 20;
  if (arch == "deeplabv3plus") return 11;
  return kNumClasses;
}

void print_usage() {
  std::printf(
      "Usage: bench_model_throughput [flags]\n"
      "  --models a,b        registry names (default resnet18,alexnet,vgg16)\n"
      "  --batch-size N      images per iteration (default 16)\n"
      "  --threads N         intra-op CPU threads; inter-op is 1 (default 2)\n"
      "  --size N            input height = width in pixels, at least 64 (default 224)\n"
      "  --height N          input height, with --width: a non-square input (default\n"
      "                      --size)\n"
      "  --width N           input width (default --size)\n"
      "  --num-classes N     classes (default per model: 1000, erfnet 20, deeplabv3plus\n"
      "                      11)\n"
      "  --iters N           timed iterations per model and mode (default 10)\n"
      "  --warmup N          untimed iterations first; training does at least 2 (default 2)\n"
      "  --modes a,b         forward (eval, no grad) and/or train (forward, cross-entropy,\n"
      "                      backward, SGD momentum 0.9 lr 0.01) (default forward,train);\n"
      "                      [N, C, H, W] logits take a per-pixel cross-entropy against\n"
      "                      random [N, H, W] targets\n"
      "  --seed N            seeds the weights, the batch and dropout (default 0)\n"
      "  --device D          cpu, cuda or cuda:N (default cpu)\n"
      "  --precisions a,b    fp32 and/or bf16 (CUDA autocast around forward and loss)\n"
      "                      (default fp32)\n"
      "  --memory-format F   contiguous (NCHW) or channels_last: 4-D parameters and the\n"
      "                      input (default contiguous)\n"
      "  --cudnn-benchmark B 1: cuDNN times its algorithms per shape, as the trainer\n"
      "                      does; 0: its heuristics, PyTorch's default (default 1)\n"
      "  --peak-tflops X     device peak for model-FLOPs utilisation (default 990, the\n"
      "                      H200's dense bf16)\n"
      "  --json FILE         write the results as JSON\n"
      "Models: %s\n",
      fmt::format("{}", fmt::join(gpulab::models::model_names(), ", ")).c_str());
}

std::vector<std::string> split_list(const std::string& flag, const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  GPULAB_CHECK(!out.empty(), ErrorKind::kInvalidArgument, "{} is empty", flag);
  return out;
}

// split_list, each item one of `valid`.
std::vector<std::string> split_choices(const std::string& flag, const std::string& list,
                                       const std::vector<std::string>& valid) {
  std::vector<std::string> out = split_list(flag, list);
  for (const auto& item : out) {
    GPULAB_CHECK(std::find(valid.begin(), valid.end(), item) != valid.end(),
                 ErrorKind::kInvalidArgument, "{}: unknown value '{}'; valid: {}", flag, item,
                 fmt::join(valid, ", "));
  }
  return out;
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "-h" || arg == "--help") {
      print_usage();
      std::exit(0);
    }
    const auto eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "{} needs a value", arg);
    }
    auto to_int = [&](const std::string& v, long long min) {
      try {
        size_t used = 0;
        const long long n = std::stoll(v, &used);
        if (used == v.size() && n >= min) return static_cast<int64_t>(n);
      } catch (const std::exception&) {
      }
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "{}: expected an integer >= {}, got '{}'", arg, min,
                  v);
    };
    if (arg == "--models") {
      f.models.clear();
      for (const auto& m : split_list(arg, value)) {
        f.models.push_back(gpulab::models::resolve_model_name(m));
      }
    } else if (arg == "--batch-size") {
      f.batch_size = to_int(value, 1);
    } else if (arg == "--threads") {
      f.threads = static_cast<int>(to_int(value, 1));
    } else if (arg == "--size") {
      // Below 64 gpulab's ResNet switches to its small-input stem, which
      // torchvision does not have: the comparison would not be like for like.
      f.size = to_int(value, 64);
    } else if (arg == "--height") {
      f.height = to_int(value, 16);
    } else if (arg == "--width") {
      f.width = to_int(value, 16);
    } else if (arg == "--num-classes") {
      f.num_classes = to_int(value, 1);
    } else if (arg == "--iters") {
      f.iters = to_int(value, 1);
    } else if (arg == "--warmup") {
      f.warmup = to_int(value, 0);
    } else if (arg == "--modes") {
      f.modes = split_choices(arg, value, {"forward", "train"});
    } else if (arg == "--seed") {
      f.seed = to_int(value, 0);
    } else if (arg == "--device") {
      f.device = value;
    } else if (arg == "--precisions") {
      f.precisions = split_choices(arg, value, {"fp32", "bf16"});
    } else if (arg == "--memory-format") {
      GPULAB_CHECK(value == "contiguous" || value == "channels_last", ErrorKind::kInvalidArgument,
                   "--memory-format: expected contiguous or channels_last, got '{}'", value);
      f.memory_format = value;
    } else if (arg == "--cudnn-benchmark") {
      GPULAB_CHECK(value == "0" || value == "1", ErrorKind::kInvalidArgument,
                   "--cudnn-benchmark: expected 0 or 1, got '{}'", value);
      f.cudnn_benchmark = value == "1";
    } else if (arg == "--peak-tflops") {
      try {
        f.peak_tflops = std::stod(value);
      } catch (const std::exception&) {
        f.peak_tflops = -1;
      }
      GPULAB_CHECK(f.peak_tflops > 0, ErrorKind::kInvalidArgument,
                   "--peak-tflops: expected a positive number, got '{}'", value);
    } else if (arg == "--json") {
      f.json = value;
    } else {
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "unknown flag '{}'; see --help", arg);
    }
  }
  if (f.height == 0) f.height = f.size;
  if (f.width == 0) f.width = f.size;
  return f;
}

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

struct ModeResult {
  std::vector<double> iter_ms;             // one per timed iteration
  std::map<std::string, double> phase_ms;  // medians; training only
  nlohmann::json validation;
  int64_t peak_memory_bytes = -1;  // GPU only
};

// Where an iteration runs, and whether under bf16 autocast.
struct RunSetup {
  c10::Device device = c10::Device(c10::kCPU);
  bool bf16 = false;
};

// CUDA autocast to bf16 for its lifetime when `on`.
class Autocast {
 public:
  explicit Autocast(bool on) : on_(on) {
    if (on_) gpulab::compat::set_cuda_autocast(true, at::kBFloat16);
  }
  ~Autocast() {
    if (on_) gpulab::compat::set_cuda_autocast(false, at::kBFloat16);
  }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool on_;
};

// Eval mode under NoGradGuard, as the peer's model.eval() + torch.no_grad().
ModeResult time_forward(gpulab::models::Network& model, const at::Tensor& x, int64_t num_classes,
                        const Flags& f, const RunSetup& setup) {
  model.eval();
  torch::NoGradGuard no_grad;
  ModeResult r;
  gpulab::bench::reset_peak_memory(setup.device);
  for (int64_t i = 0; i < std::max<int64_t>(f.warmup, 1); ++i) {
    const at::Tensor y = [&] {
      const Autocast autocast(setup.bf16);
      return model.forward(x);
    }();
    if (i > 0) continue;
    // Validate once: the right shape (class logits, or per-pixel logits at
    // the input's size) and finite logits.
    const bool classes = y.dim() == 2 && y.size(0) == f.batch_size && y.size(1) == num_classes;
    const bool pixels = y.dim() == 4 && y.size(0) == f.batch_size && y.size(1) == num_classes &&
                        y.size(2) == x.size(2) && y.size(3) == x.size(3);
    GPULAB_CHECK(classes || pixels, ErrorKind::kRuntime,
                 "forward: expected logits [{}, {}] or [{}, {}, {}, {}], got [{}]", f.batch_size,
                 num_classes, f.batch_size, num_classes, x.size(2), x.size(3),
                 fmt::join(y.sizes(), ", "));
    GPULAB_CHECK(torch::isfinite(y).all().item<bool>(), ErrorKind::kRuntime,
                 "forward: the logits are not all finite");
    r.validation = {{"logits_finite", true}, {"logits_abs_mean", y.abs().mean().item<double>()}};
  }
  for (int64_t i = 0; i < f.iters; ++i) {
    gpulab::bench::synchronize(setup.device);
    gpulab::core::Stopwatch sw;
    {
      const Autocast autocast(setup.bf16);
      const at::Tensor y = model.forward(x);
    }
    gpulab::bench::synchronize(setup.device);
    r.iter_ms.push_back(1e3 * sw.seconds());
  }
  r.peak_memory_bytes = gpulab::bench::peak_memory_bytes(setup.device);
  return r;
}

// One SGD step as the trainer takes it: gradients dropped (set undefined, the
// peer's zero_grad(set_to_none=True)), forward and cross-entropy (under bf16
// autocast when asked), backward, step, the loss read on the host. `labels`
// [N] class indices; when the logits come out [N, C, H, W] they are replaced
// at the first forward by random [N, H, W] pixel targets (a generator of their
// own, seeded with --seed, so the dropout masks are not disturbed), and the
// cross-entropy is the mean over every pixel.
ModeResult time_train(gpulab::models::Network& model, const at::Tensor& x, at::Tensor labels,
                      const Flags& f, const RunSetup& setup) {
  model.train();
  gpulab::bench::reset_peak_memory(setup.device);
  auto parameters = model.parameters();
  // The trainer's SGD (multi-tensor kernels, as PyTorch's own SGD on GPUs).
  gpulab::train::ForeachSGD optimizer(parameters,
                                      torch::optim::SGDOptions(kLearnRate).momentum(kMomentum));
  std::vector<double> losses, fwd_ms, bwd_ms, step_ms;
  ModeResult r;
  const int64_t warmup = std::max(f.warmup, kMinTrainWarmup);
  for (int64_t i = 0; i < warmup + f.iters; ++i) {
    // Steps 1 and 2 draw the same dropout masks, so their losses differ by the
    // first weight update alone.
    if (i < 2) gpulab::core::seed_everything(static_cast<uint64_t>(f.seed));
    gpulab::core::Stopwatch sw;
    for (auto& p : parameters) p.mutable_grad() = at::Tensor();
    const double t_zero = sw.seconds();
    const at::Tensor loss = [&] {
      const Autocast autocast(setup.bf16);
      const at::Tensor logits = model.forward(x).to(torch::kFloat32);
      if (logits.dim() == 4 && labels.dim() == 1) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(f.seed));
        labels = torch::randint(0, logits.size(1), {logits.size(0), logits.size(2), logits.size(3)},
                                gen, torch::kLong)
                     .to(logits.device());
      }
      return torch::nn::functional::cross_entropy(logits, labels);
    }();
    const double t_fwd = sw.seconds();
    loss.backward();
    const double t_bwd = sw.seconds();
    optimizer.step();
    const double value = loss.item<double>();
    const double t_end = sw.seconds();
    GPULAB_CHECK(std::isfinite(value), ErrorKind::kRuntime, "train: the loss is {} at step {}",
                 value, i + 1);
    if (i < warmup) {
      losses.push_back(value);
      continue;
    }
    r.iter_ms.push_back(1e3 * t_end);
    fwd_ms.push_back(1e3 * (t_fwd - t_zero));
    bwd_ms.push_back(1e3 * (t_bwd - t_fwd));
    step_ms.push_back(1e3 * (t_end - t_bwd + t_zero));
  }
  // Validate once: one SGD step on the batch must lower its loss, or the
  // gradients (and so the timing) mean nothing.
  GPULAB_CHECK(losses[1] < losses[0], ErrorKind::kRuntime,
               "train: the loss on the fixed batch did not fall from step 1 to 2 ({} -> {})",
               losses[0], losses[1]);
  r.validation = {{"loss_step1", losses[0]}, {"loss_step2", losses[1]}};
  // On a GPU these are host times: kernels queue asynchronously and the loss
  // read waits for them, so "step" holds the GPU work still queued.
  r.phase_ms = {
      {"forward", median(fwd_ms)}, {"backward", median(bwd_ms)}, {"step", median(step_ms)}};
  r.peak_memory_bytes = gpulab::bench::peak_memory_bytes(setup.device);
  return r;
}

std::string dtype_name(bool bf16) {
  return bf16 ? "bfloat16 autocast (float32 weights)" : "float32";
}

int run(int argc, char** argv) {
  // Inter-op threads must be set before any inter-op work starts.
  at::set_num_interop_threads(1);
  const Flags f = parse_flags(argc, argv);
  at::set_num_threads(f.threads);
  const c10::Device device = gpulab::bench::parse_device(f.device);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(f.cudnn_benchmark);
  for (const auto& p : f.precisions) {
    GPULAB_CHECK(p != "bf16" || device.is_cuda(), ErrorKind::kInvalidArgument,
                 "--precisions bf16 is CUDA autocast: it needs --device cuda");
  }
  const bool channels_last = f.memory_format == "channels_last";

  // The checkout the executable was built in (build/ lives in it).
  std::string exe_dir = argv[0];
  exe_dir = exe_dir.find('/') == std::string::npos ? "." : exe_dir.substr(0, exe_dir.rfind('/'));
  const std::string machine = host_name(), cpu = cpu_model(), commit = git_commit(exe_dir);
  const std::string device_name = gpulab::core::describe_device(device);
  const std::string memory_format =
      channels_last ? "channels_last (NHWC)" : std::string("contiguous (NCHW)");
  // What every result and the file record about where and how they ran.
  const nlohmann::json context = {{"device", device.str()},
                                  {"cudnn_benchmark", device.is_cuda() && f.cudnn_benchmark},
                                  {"device_name", device_name},
                                  {"memory_format", memory_format},
                                  {"machine", machine},
                                  {"cpu_model", cpu},
                                  {"torch_version", gpulab::compat::torch_version()},
                                  {"git_commit", commit}};
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& arch : f.models) {
    for (const std::string& precision : f.precisions) {
      const RunSetup setup{device, precision == "bf16"};
      // A fresh model per precision: each starts from the same seeded weights.
      gpulab::core::seed_everything(static_cast<uint64_t>(f.seed));
      const int64_t num_classes = f.num_classes > 0 ? f.num_classes : default_num_classes(arch);
      gpulab::models::ModelConfig config;
      config.arch = arch;
      config.num_classes = num_classes;
      config.in_channels = kInChannels;
      config.height = f.height;
      config.width = f.width;
      auto model = gpulab::models::create_model(config);
      model->to(device);
      int64_t num_parameters = 0;
      for (const auto& p : model->parameters()) num_parameters += p.numel();
      if (channels_last) {
        torch::NoGradGuard no_grad;
        for (auto& p : model->parameters()) {
          if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
        }
      }
      // Drawn on the CPU, so the batch is the same on every device.
      at::Tensor x = torch::randn({f.batch_size, kInChannels, f.height, f.width}).to(device);
      if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
      const at::Tensor labels =
          torch::randint(0, num_classes, {f.batch_size}, torch::kLong).to(device);
      const double pixels = static_cast<double>(f.height * f.width);
      const double gflop_224 = forward_gflop_224(arch);
      const double gflop_mp = forward_gflop_per_megapixel(arch);
      const double gflop_forward = gflop_224 > 0  ? gflop_224 * pixels / (224.0 * 224.0)
                                   : gflop_mp > 0 ? gflop_mp * pixels / 1e6
                                                  : -1;
      // Square inputs print as before ("size 224"), others as "size 1024x512".
      const std::string size_text = f.height == f.width
                                        ? std::to_string(f.height)
                                        : std::to_string(f.width) + "x" + std::to_string(f.height);

      for (const std::string& mode : f.modes) {
        const ModeResult r = mode == "forward" ? time_forward(*model, x, num_classes, f, setup)
                                               : time_train(*model, x, labels, f, setup);
        const double mean_ms = sum(r.iter_ms) / static_cast<double>(r.iter_ms.size());
        const double median_ms = median(r.iter_ms);
        const double ips = 1e3 * static_cast<double>(f.batch_size) / mean_ms;
        std::printf(
            "gpulab  %-10s %-7s %-4s %s batch %lld size %s threads %d: %8.2f images/s, %9.2f "
            "ms/iter (median %.2f)",
            arch.c_str(), mode.c_str(), precision.c_str(), device.str().c_str(),
            static_cast<long long>(f.batch_size), size_text.c_str(), at::get_num_threads(), ips,
            mean_ms, median_ms);
        nlohmann::json entry = {
            {"model", arch},
            {"mode", mode},
            {"implementation", "gpulab"},
            {"images_per_second", ips},
            {"ms_per_iter", mean_ms},
            {"ms_per_iter_median", median_ms},
            {"images_per_second_at_median", 1e3 * static_cast<double>(f.batch_size) / median_ms},
            {"iter_ms", r.iter_ms},
            {"iters", f.iters},
            {"warmup", mode == "train" ? std::max(f.warmup, kMinTrainWarmup) : f.warmup},
            {"batch_size", f.batch_size},
            {"threads", at::get_num_threads()},
            {"interop_threads", at::get_num_interop_threads()},
            {"size", f.height == f.width ? nlohmann::json(f.height) : nlohmann::json()},
            {"height", f.height},
            {"width", f.width},
            {"num_classes", num_classes},
            {"parameters", num_parameters},
            {"precision", precision},
            {"dtype", dtype_name(setup.bf16)},
            {"validation", r.validation}};
        entry.update(context);
        if (!r.phase_ms.empty()) entry["phase_ms_median"] = r.phase_ms;
        if (r.peak_memory_bytes >= 0) {
          entry["peak_memory_bytes"] = r.peak_memory_bytes;
          std::printf(", peak %.2f GiB", static_cast<double>(r.peak_memory_bytes) / (1 << 30));
        }
        if (gflop_forward > 0) {
          // Model FLOPs: the network's arithmetic, whatever the kernels do.
          const double per_image = (mode == "train" ? 3 : 1) * gflop_forward;
          const double tflops = ips * per_image / 1e3;
          entry["gflop_per_image"] = per_image;
          entry["model_tflops"] = tflops;
          entry["peak_tflops"] = f.peak_tflops;
          entry["mfu"] = tflops / f.peak_tflops;
          if (device.is_cuda()) std::printf(", MFU %.1f%%", 100 * tflops / f.peak_tflops);
        }
        std::printf("\n");
        std::fflush(stdout);
        results.push_back(entry);
      }
    }
  }

  if (!f.json.empty()) {
    const nlohmann::json j = {
        {"benchmark", "model_throughput"},
        {"implementation", "gpulab"},
        {"statistic",
         "images_per_second = batch / mean iteration time over the timed "
         "iterations; ms_per_iter is that mean, ms_per_iter_median the median"},
        {"batch_size", f.batch_size},
        {"threads", at::get_num_threads()},
        {"size", f.height == f.width ? nlohmann::json(f.height) : nlohmann::json()},
        {"height", f.height},
        {"width", f.width},
        {"precisions", f.precisions},
        {"results", results}};
    nlohmann::json out = j;
    out.update(context);
    gpulab::core::write_file_atomic(f.json, out.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return gpulab::bench::run_main("bench_model_throughput", run, argc, argv);
}
