// bench_style_throughput: fast neural style transfer's two workloads on a
// fixed random batch, images/s on the CPU or a GPU: the training step
// (transformer_net, the VGG-16 perceptual loss, backward, Adam) and
// inference (transformer_net forward).
//
//   bench_style_throughput [--modes forward,train] [--batch-size 4]
//       [--size 256 | --height H --width W] [--style-size 256] [--threads 2]
//       [--iters 10] [--warmup 2] [--seed 0] [--loss-network-weights FILE]
//       [--device cpu|cuda[:N]] [--precisions fp32,bf16]
//       [--memory-format contiguous|channels_last] [--json FILE]
//
// What one iteration is (the PyTorch eager peer, bench/peers/style_transfer.py,
// times the same; bench/run_style_benchmarks.sh runs both):
//   forward: transformer_net.forward(x) in eval mode under NoGradGuard.
//   train:   gradients dropped; y = transformer_net(x); tasks::PerceptualLoss
//            with `gpulab train --task style`'s defaults (pytorch/examples'
//            recipe: VGG-16 to relu4_3, frozen; content relu2_2, style
//            relu1_2, relu2_2, relu3_3, relu4_3, weights 1e5 / 1e10, no TV),
//            i.e. VGG on y, VGG on x without gradient, Gram matrices, means;
//            backward; Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight
//            decay: the reference's); the loss read on the host.
// x is [N, 3, H, W] float32 pixels 0..255 drawn once (uniform, a generator
// of its own seeded with --seed, then the [1, 3, S, S] style image from the
// same generator), so both programs see the same batch and style; with the
// same --seed the transformer_net starts from the same weights on both sides
// (PyTorch's default initialisation, modules created in the same order), and
// with --loss-network-weights (the peer's --write-loss-network file) so does
// the VGG: the losses then agree, a check that the two compute the same thing.
// Protocol (STYLE.md 16): warm up (training at least 2 steps), validate once
// (finite output of the right shape; the loss on the fixed batch falls from
// step 1 to 2), time --iters iterations one by one, write JSON in
// bench_model_throughput's format. Data loading is not timed on either side.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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
#include "gpulab/models/vgg_features.h"
#include "gpulab/models/weight_file.h"
#include "gpulab/tasks/perceptual_loss.h"

namespace {

using gpulab::ErrorKind;
using gpulab::bench::median;

constexpr const char* kArch = "transformer_net";
constexpr double kLearnRate = 1e-3;  // pytorch/examples' and the style task's
constexpr int64_t kMinTrainWarmup = 2;
// Forward GFLOP per megapixel (2 x the convs' multiply-adds, counted with
// forward hooks on the peer's modules): transformer_net, and VGG-16's
// features up to relu4_3. A training step is 3 x the transformer (forward,
// backward) + 3 x the VGG (forward on the output, its input-gradient backward,
// forward on the content batch).
constexpr double kTransformerGflopPerMp = 307.584;
constexpr double kVggGflopPerMp = 556.416;

struct Flags {
  std::vector<std::string> modes = {"forward", "train"};
  int64_t batch_size = 4;
  int64_t size = 256;
  int64_t height = 0, width = 0;  // 0: --size
  int64_t style_size = 256;
  int threads = 2;
  int64_t iters = 10;
  int64_t warmup = 2;
  int64_t seed = 0;
  std::string loss_network_weights;  // empty: LibTorch's default initialisation, seeded
  std::string device = "cpu";
  std::vector<std::string> precisions = {"fp32"};
  std::string memory_format = "contiguous";
  bool cudnn_benchmark = true;  // as the trainer on a GPU
  double peak_tflops = 990;     // H200 SXM dense bf16
  std::string json;
};

void print_usage() {
  std::printf(
      "Usage: bench_style_throughput [flags]\n"
      "  --modes a,b         forward (transformer_net, eval, no grad) and/or train\n"
      "                      (transformer_net + VGG-16 perceptual loss + backward + Adam)\n"
      "                      (default forward,train)\n"
      "  --batch-size N      images per iteration (default 4)\n"
      "  --size N            content height = width in pixels, at least 16 (default 256)\n"
      "  --height N          content height, with --width (default --size)\n"
      "  --width N           content width (default --size)\n"
      "  --style-size N      the random style image's side in pixels, at least 16\n"
      "                      (default 256)\n"
      "  --threads N         intra-op CPU threads; inter-op is 1 (default 2)\n"
      "  --iters N           timed iterations per mode (default 10)\n"
      "  --warmup N          untimed iterations first; training does at least 2 (default 2)\n"
      "  --seed N            seeds transformer_net's weights, the batch and the style\n"
      "                      image (default 0)\n"
      "  --loss-network-weights FILE\n"
      "                      VGG-16 weights (torchvision state dict, e.g. the peer's\n"
      "                      --write-loss-network file) (default: LibTorch's seeded\n"
      "                      initialisation)\n"
      "  --device D          cpu, cuda or cuda:N (default cpu)\n"
      "  --precisions a,b    fp32 and/or bf16 (CUDA autocast around forward and loss)\n"
      "                      (default fp32)\n"
      "  --memory-format F   contiguous (NCHW) or channels_last: 4-D parameters of both\n"
      "                      networks and the batch (default contiguous)\n"
      "  --cudnn-benchmark B 1: cuDNN times its algorithms per shape, as the trainer\n"
      "                      does; 0: its heuristics (default 1)\n"
      "  --peak-tflops X     device peak for model-FLOPs utilisation (default 990)\n"
      "  --json FILE         write the results as JSON\n");
}

std::vector<std::string> split_choices(const std::string& flag, const std::string& list,
                                       const std::vector<std::string>& valid) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    GPULAB_CHECK(std::find(valid.begin(), valid.end(), item) != valid.end(),
                 ErrorKind::kInvalidArgument, "{}: unknown value '{}'; valid: {}", flag, item,
                 fmt::join(valid, ", "));
    out.push_back(item);
  }
  GPULAB_CHECK(!out.empty(), ErrorKind::kInvalidArgument, "{} is empty; valid: {}", flag,
               fmt::join(valid, ", "));
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
    auto to_int = [&](long long min) {
      try {
        size_t used = 0;
        const long long n = std::stoll(value, &used);
        if (used == value.size() && n >= min) return static_cast<int64_t>(n);
      } catch (const std::exception&) {
      }
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "{}: expected an integer >= {}, got '{}'", arg, min,
                  value);
    };
    if (arg == "--modes") {
      f.modes = split_choices(arg, value, {"forward", "train"});
    } else if (arg == "--batch-size") {
      f.batch_size = to_int(1);
    } else if (arg == "--size") {
      f.size = to_int(16);
    } else if (arg == "--height") {
      f.height = to_int(16);
    } else if (arg == "--width") {
      f.width = to_int(16);
    } else if (arg == "--style-size") {
      f.style_size = to_int(16);
    } else if (arg == "--threads") {
      f.threads = static_cast<int>(to_int(1));
    } else if (arg == "--iters") {
      f.iters = to_int(1);
    } else if (arg == "--warmup") {
      f.warmup = to_int(0);
    } else if (arg == "--seed") {
      f.seed = to_int(0);
    } else if (arg == "--loss-network-weights") {
      f.loss_network_weights = value;
    } else if (arg == "--device") {
      f.device = value;
    } else if (arg == "--precisions") {
      f.precisions = split_choices(arg, value, {"fp32", "bf16"});
    } else if (arg == "--memory-format") {
      f.memory_format = split_choices(arg, value, {"contiguous", "channels_last"}).front();
    } else if (arg == "--cudnn-benchmark") {
      f.cudnn_benchmark = split_choices(arg, value, {"0", "1"}).front() == "1";
    } else if (arg == "--peak-tflops") {
      f.peak_tflops = -1;
      try {
        f.peak_tflops = std::stod(value);
      } catch (const std::exception&) {
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

struct ModeResult {
  std::vector<double> iter_ms;             // one per timed iteration
  std::map<std::string, double> phase_ms;  // medians; training only
  nlohmann::json validation;
  int64_t peak_memory_bytes = -1;  // GPU only
};

// Eval mode under NoGradGuard, as the peer's model.eval() + torch.no_grad().
ModeResult time_forward(gpulab::models::Network& model, const at::Tensor& x, const Flags& f,
                        const c10::Device& device, bool bf16) {
  model.eval();
  torch::NoGradGuard no_grad;
  ModeResult r;
  gpulab::bench::reset_peak_memory(device);
  for (int64_t i = 0; i < std::max<int64_t>(f.warmup, 1); ++i) {
    const at::Tensor y = [&] {
      const Autocast autocast(bf16);
      return model.forward(x);
    }();
    if (i > 0) continue;
    // Validate once: RGB at 4 ceil(H / 4) x 4 ceil(W / 4), finite.
    const int64_t h = (x.size(2) + 3) / 4 * 4, w = (x.size(3) + 3) / 4 * 4;
    GPULAB_CHECK(y.dim() == 4 && y.size(0) == f.batch_size && y.size(1) == 3 && y.size(2) == h &&
                     y.size(3) == w,
                 ErrorKind::kRuntime, "forward: expected an output [{}, 3, {}, {}], got [{}]",
                 f.batch_size, h, w, fmt::join(y.sizes(), ", "));
    GPULAB_CHECK(torch::isfinite(y).all().item<bool>(), ErrorKind::kRuntime,
                 "forward: the output is not all finite");
    r.validation = {{"output_finite", true},
                    {"output_mean", y.to(torch::kFloat32).mean().item<double>()}};
  }
  for (int64_t i = 0; i < f.iters; ++i) {
    gpulab::bench::synchronize(device);
    gpulab::core::Stopwatch sw;
    {
      const Autocast autocast(bf16);
      const at::Tensor y = model.forward(x);
    }
    gpulab::bench::synchronize(device);
    r.iter_ms.push_back(1e3 * sw.seconds());
  }
  r.peak_memory_bytes = gpulab::bench::peak_memory_bytes(device);
  return r;
}

// One step as `gpulab train --task style` takes it (the trainer's Adam,
// gradients dropped first), the loss read on the host.
ModeResult time_train(gpulab::models::Network& model, const gpulab::tasks::PerceptualLoss& loss,
                      const at::Tensor& x, const Flags& f, const c10::Device& device, bool bf16) {
  model.train();
  gpulab::bench::reset_peak_memory(device);
  auto parameters = model.parameters();
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(kLearnRate));
  std::vector<double> losses, fwd_ms, loss_ms, bwd_ms, step_ms;
  double content_step1 = 0, style_step1 = 0;
  ModeResult r;
  const int64_t warmup = std::max(f.warmup, kMinTrainWarmup);
  for (int64_t i = 0; i < warmup + f.iters; ++i) {
    gpulab::core::Stopwatch sw;
    for (auto& p : parameters) p.mutable_grad() = at::Tensor();
    const double t_zero = sw.seconds();
    double t_fwd = 0;
    const gpulab::tasks::PerceptualLossTerms terms = [&] {
      const Autocast autocast(bf16);
      const at::Tensor y = model.forward(x);
      t_fwd = sw.seconds();
      return loss(y, x);
    }();
    const double t_loss = sw.seconds();
    terms.total.backward();
    const double t_bwd = sw.seconds();
    optimizer.step();
    const double value = terms.total.item<double>();
    const double t_end = sw.seconds();
    GPULAB_CHECK(std::isfinite(value), ErrorKind::kRuntime, "train: the loss is {} at step {}",
                 value, i + 1);
    if (i == 0) {
      content_step1 = terms.content.item<double>();
      style_step1 = terms.style.item<double>();
    }
    if (i < warmup) {
      losses.push_back(value);
      continue;
    }
    r.iter_ms.push_back(1e3 * t_end);
    fwd_ms.push_back(1e3 * (t_fwd - t_zero));
    loss_ms.push_back(1e3 * (t_loss - t_fwd));
    bwd_ms.push_back(1e3 * (t_bwd - t_loss));
    step_ms.push_back(1e3 * (t_end - t_bwd + t_zero));
  }
  // Validate once: one Adam step on the batch must lower its loss, or the
  // gradients (and so the timing) mean nothing. Under bf16 recorded only.
  const bool fell = losses[1] < losses[0];
  GPULAB_CHECK(fell || bf16, ErrorKind::kRuntime,
               "train: the loss on the fixed batch did not fall from step 1 to 2 ({} -> {})",
               losses[0], losses[1]);
  r.validation = {{"loss_step1", losses[0]},
                  {"loss_step2", losses[1]},
                  {"loss_fell", fell},
                  {"content_loss_step1", content_step1},
                  {"style_loss_step1", style_step1}};
  // On a GPU these are host times: "step" holds the GPU work still queued.
  r.phase_ms = {{"forward", median(fwd_ms)},
                {"loss", median(loss_ms)},
                {"backward", median(bwd_ms)},
                {"step", median(step_ms)}};
  r.peak_memory_bytes = gpulab::bench::peak_memory_bytes(device);
  return r;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
  }
}

int run(int argc, char** argv) {
  at::set_num_interop_threads(1);  // before any inter-op work starts
  const Flags f = parse_flags(argc, argv);
  at::set_num_threads(f.threads);
  const c10::Device device = gpulab::bench::parse_device(f.device);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(f.cudnn_benchmark);
  for (const auto& p : f.precisions) {
    GPULAB_CHECK(p != "bf16" || device.is_cuda(), ErrorKind::kInvalidArgument,
                 "--precisions bf16 is CUDA autocast: it needs --device cuda");
  }
  const bool channels_last = f.memory_format == "channels_last";
  const auto cl_format =
      channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;

  std::string exe_dir = argv[0];
  exe_dir = exe_dir.find('/') == std::string::npos ? "." : exe_dir.substr(0, exe_dir.rfind('/'));
  const nlohmann::json context = {
      {"device", device.str()},
      {"cudnn_benchmark", device.is_cuda() && f.cudnn_benchmark},
      {"device_name", gpulab::core::describe_device(device)},
      {"memory_format", channels_last ? "channels_last (NHWC)" : "contiguous (NCHW)"},
      {"machine", gpulab::bench::host_name()},
      {"cpu_model", gpulab::bench::cpu_model()},
      {"torch_version", gpulab::compat::torch_version()},
      {"git_commit", gpulab::bench::git_commit(exe_dir)}};

  // The batch and the style image: uniform 0..255 from a generator of their
  // own, drawn on the CPU in this order, as the peer draws them.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(f.seed));
  at::Tensor x = (torch::rand({f.batch_size, 3, f.height, f.width}, gen) * 255).to(device);
  at::Tensor style = (torch::rand({1, 3, f.style_size, f.style_size}, gen) * 255).to(device);
  x = x.contiguous(cl_format);
  style = style.contiguous(cl_format);

  const gpulab::tasks::PerceptualLossOptions loss_options;  // the style task's defaults
  std::vector<std::string> taps = loss_options.content_layers();
  taps.insert(taps.end(), loss_options.style_layers().begin(), loss_options.style_layers().end());

  const double megapixels = static_cast<double>(f.height * f.width) / 1e6;
  const std::string size_text = std::to_string(f.width) + "x" + std::to_string(f.height);
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& precision : f.precisions) {
    const bool bf16 = precision == "bf16";
    // A fresh network per precision, each from the same seeded weights.
    gpulab::core::seed_everything(static_cast<uint64_t>(f.seed));
    gpulab::models::ModelConfig config;
    config.arch = kArch;
    config.num_classes = 3;
    config.in_channels = 3;
    config.height = f.height;
    config.width = f.width;
    auto model = gpulab::models::create_model(config);
    model->to(device);
    int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    if (channels_last) to_channels_last(*model);

    auto vgg = std::make_shared<gpulab::models::VggFeatures>("vgg16", taps);
    if (!f.loss_network_weights.empty()) {
      vgg->load_weights(gpulab::models::read_weight_file(f.loss_network_weights));
    }
    vgg->to(device);
    vgg->eval();
    if (channels_last) to_channels_last(*vgg);
    int64_t vgg_parameters = 0;
    for (const auto& p : vgg->parameters()) vgg_parameters += p.numel();
    const gpulab::tasks::PerceptualLoss loss(vgg, loss_options, style);

    for (const std::string& mode : f.modes) {
      const ModeResult r = mode == "forward" ? time_forward(*model, x, f, device, bf16)
                                             : time_train(*model, loss, x, f, device, bf16);
      double sum = 0;
      for (double ms : r.iter_ms) sum += ms;
      const double mean_ms = sum / static_cast<double>(r.iter_ms.size());
      const double median_ms = median(r.iter_ms);
      const double ips = 1e3 * static_cast<double>(f.batch_size) / mean_ms;
      const double gflop = mode == "forward"
                               ? kTransformerGflopPerMp * megapixels
                               : 3 * (kTransformerGflopPerMp + kVggGflopPerMp) * megapixels;
      const double tflops = ips * gflop / 1e3;
      std::printf(
          "gpulab  %s %-7s %-4s %s batch %lld size %s threads %d: %8.3f images/s, %9.2f "
          "ms/iter (median %.2f)",
          kArch, mode.c_str(), precision.c_str(), device.str().c_str(),
          static_cast<long long>(f.batch_size), size_text.c_str(), at::get_num_threads(), ips,
          mean_ms, median_ms);
      nlohmann::json entry = {
          {"model", kArch},
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
          {"height", f.height},
          {"width", f.width},
          {"style_size", f.style_size},
          {"num_classes", 3},
          {"parameters", parameters},
          {"loss_network", "vgg16 features to relu4_3, frozen"},
          {"loss_network_parameters", vgg_parameters},
          {"loss_network_weights", f.loss_network_weights.empty()
                                       ? std::string("LibTorch default initialisation, seeded")
                                       : f.loss_network_weights},
          {"precision", precision},
          {"dtype", bf16 ? "bfloat16 autocast (float32 weights)" : "float32"},
          {"gflop_per_image", gflop},
          {"model_tflops", tflops},
          {"peak_tflops", f.peak_tflops},
          {"mfu", tflops / f.peak_tflops},
          {"validation", r.validation}};
      entry.update(context);
      if (!r.phase_ms.empty()) entry["phase_ms_median"] = r.phase_ms;
      if (r.peak_memory_bytes >= 0) {
        entry["peak_memory_bytes"] = r.peak_memory_bytes;
        std::printf(", peak %.2f GiB", static_cast<double>(r.peak_memory_bytes) / (1 << 30));
      }
      if (device.is_cuda()) std::printf(", MFU %.1f%%", 100 * tflops / f.peak_tflops);
      std::printf("\n");
      std::fflush(stdout);
      results.push_back(entry);
    }
  }

  if (!f.json.empty()) {
    nlohmann::json out = {
        {"benchmark", "style_throughput"},
        {"implementation", "gpulab"},
        {"statistic",
         "images_per_second = batch / mean iteration time over the timed iterations; "
         "ms_per_iter is that mean, ms_per_iter_median the median"},
        {"batch_size", f.batch_size},
        {"threads", at::get_num_threads()},
        {"height", f.height},
        {"width", f.width},
        {"precisions", f.precisions},
        {"results", results}};
    out.update(context);
    gpulab::core::write_file_atomic(f.json, out.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return gpulab::bench::run_main("bench_style_throughput", run, argc, argv);
}
