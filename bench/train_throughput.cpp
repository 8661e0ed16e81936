// bench_train_throughput: images/s of the trainer's step (basic_cnn on
// Fashion-MNIST, resident data, sgdm) for named variants of the CPU step and,
// with --device cuda, of the GPU step.
//
//   bench_train_throughput [--batch-size 128] [--threads 2] [--steps 300]
//       [--warmup 10] [--nf 8] [--data DIR] [--cases=default,channels_last]
//       [--device cpu|cuda[:N]] [--sync-every N] [--json FILE]
//
// Protocol (STYLE.md 16): warm up, validate once (the loss falls), time many
// steps with phase timings (data, forward, backward, step), write JSON. On a
// GPU the phases are host (launch) times; images/s comes from the wall time
// of all timed steps, synchronised at both ends, and the losses are read on
// the host every --sync-every steps, as the trainer reads them at its
// verbose frequency (50) on a GPU.
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
#include "gpulab/data/epoch_sampler.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/models/registry.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/train/gradient_clip.h"
#include "gpulab/train/lr_schedule.h"
#include "gpulab/train/optimizer_factory.h"
#include "gpulab/train/step_precision.h"
#include "gpulab/train/train_options.h"
#include "gpulab/train/trainer.h"

namespace {

using gpulab::ErrorKind;
using gpulab::bench::cpu_model;
using gpulab::bench::git_commit;
using gpulab::bench::host_name;
using gpulab::bench::median;

// One way of running the same step: the same math, model, batch and solver.
struct Case {
  std::string name;
  std::string description;
  bool channels_last = false;  // parameters and input in ChannelsLast
  bool mkldnn = true;          // at::globalContext().userEnabledMkldnn()
  bool grads_to_none = false;  // drop gradients instead of zero-filling them
  int threads = 0;             // 0: --threads
  bool gpu = false;            // needs --device cuda
  bool bf16 = false;           // CUDA autocast around forward and loss
  bool graph = false;          // the whole step replayed as one CUDA graph
};

const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = {
      {"default", "as the trainer does: NCHW fp32, oneDNN on, gradients dropped", false, true,
       true},
      {"zero_grad", "gradients zero-filled by optimizer.zero_grad() (the trainer before)", false,
       true, false},
      {"channels_last", "default with parameters and input in ChannelsLast", true, true, true},
      {"no_mkldnn", "default with oneDNN off: THNN/im2col convolutions", false, false, true},
      {"one_thread", "default with 1 intra-op thread", false, true, true, 1},
      {"gpu", "as the trainer does on a GPU: bf16 autocast, channels-last, gradients dropped", true,
       true, true, 0, true, true},
      {"gpu_fp32", "gpu without autocast (float32, TF32 convolutions as LibTorch's default)", true,
       true, true, 0, true, false},
      {"gpu_graph",
       "gpu with the whole step (batch, forward, backward, SGD) replayed as one "
       "CUDA graph",
       true, true, true, 0, true, true, true},
  };
  return cases;
}

std::string valid_case_names() {
  std::string s;
  for (const auto& c : all_cases()) s += (s.empty() ? "" : ", ") + c.name;
  return s;
}

// "all" is every case of the device's kind (CPU, or gpu* on a GPU).
std::vector<Case> parse_cases(const std::string& list, bool gpu) {
  std::vector<Case> out;
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    if (name == "all") {
      out.clear();
      for (const Case& c : all_cases()) {
        if (c.gpu == gpu) out.push_back(c);
      }
      return out;
    }
    auto it = std::find_if(all_cases().begin(), all_cases().end(),
                           [&](const Case& c) { return c.name == name; });
    GPULAB_CHECK(it != all_cases().end(), ErrorKind::kInvalidArgument,
                 "--cases: unknown case '{}'; valid: {}, all", name, valid_case_names());
    out.push_back(*it);
  }
  GPULAB_CHECK(!out.empty(), ErrorKind::kInvalidArgument, "--cases is empty; valid: {}",
               valid_case_names());
  return out;
}

struct Flags {
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t batch_size = 128;
  int threads = 2;
  int64_t steps = 300;
  int64_t warmup = 10;
  int64_t nf = 8;
  std::string cases = "default";
  std::string device = "cpu";
  int64_t sync_every = 0;  // 0: 1 on a CPU, 50 on a GPU
  std::string json;
};

void print_usage() {
  std::printf(
      "Usage: bench_train_throughput [flags]\n"
      "  --data DIR          Fashion-MNIST IDX folder (default /usr/share/datasets/fashion-mnist)\n"
      "  --batch-size N      images per step (default 128)\n"
      "  --threads N         intra-op CPU threads (default 2)\n"
      "  --steps N           timed steps, at least 200 (default 300)\n"
      "  --warmup N          untimed steps first (default 10)\n"
      "  --nf N              basic_cnn filters of the first unit (default 8)\n"
      "  --cases=a,b         variants to time (default 'default'); valid: %s, all;\n"
      "                      gpu* need --device cuda\n"
      "  --device D          cpu, cuda or cuda:N (default cpu)\n"
      "  --sync-every N      read the losses on the host every N steps (default 1 on a CPU,\n"
      "                      50 on a GPU: the trainer's verbose frequency)\n"
      "  --json FILE         write the results as JSON\n",
      valid_case_names().c_str());
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
    auto to_int = [&](const std::string& v) {
      try {
        size_t used = 0;
        const long long n = std::stoll(v, &used);
        if (used == v.size() && n > 0) return static_cast<int64_t>(n);
      } catch (const std::exception&) {
      }
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "{}: expected a positive integer, got '{}'", arg, v);
    };
    if (arg == "--data")
      f.data = value;
    else if (arg == "--batch-size")
      f.batch_size = to_int(value);
    else if (arg == "--threads")
      f.threads = static_cast<int>(to_int(value));
    else if (arg == "--steps")
      f.steps = to_int(value);
    else if (arg == "--warmup")
      f.warmup = to_int(value);
    else if (arg == "--nf")
      f.nf = to_int(value);
    else if (arg == "--cases")
      f.cases = value;
    else if (arg == "--device")
      f.device = value;
    else if (arg == "--sync-every")
      f.sync_every = to_int(value);
    else if (arg == "--json")
      f.json = value;
    else
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "unknown flag '{}'; see --help", arg);
  }
  return f;
}

// `uname -n` and the CPU model, e.g. "vm (AMD EPYC)".
std::string machine_description() {
  const std::string cpu = cpu_model();
  return cpu == "unknown" ? host_name() : host_name() + " (" + cpu + ")";
}

struct CaseResult {
  double images_per_second = 0;
  double step_ms = 0;  // mean over the timed steps
  double step_ms_median = 0;
  std::map<std::string, double> phase_ms;  // medians: data, forward, backward, step
  double loss_first = 0, loss_last = 0;
  int64_t peak_memory_bytes = -1;  // GPU only
};

// Runs `c` the way Trainer::fit runs an iteration: on a CPU one step after
// another with the loss read each step; on a GPU (gpu* cases) with full
// batches only, the losses read every `sync_every` steps, and for gpu_graph
// the whole step replayed as one CUDA graph.
CaseResult run_case(const Case& c, const Flags& f, const gpulab::data::Dataset& train,
                    const gpulab::data::Normalization& norm, const c10::Device& device,
                    int64_t sync_every) {
  namespace gt = gpulab::train;
  at::globalContext().setUserEnabledMkldnn(c.mkldnn);
  gpulab::core::configure_threads(c.threads > 0 ? c.threads : f.threads);
  const gt::TrainOptions options = gt::TrainOptions().batch_size(f.batch_size);

  gpulab::core::seed_everything(options.seed());
  const gpulab::tasks::ClassificationTask task("basic_cnn", {{"nf", f.nf}});
  auto model = gpulab::models::create_model(task.model_config(gpulab::train::shape_of(train)));
  model->to(device);
  if (c.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
  model->train();
  auto parameters = model->parameters();
  auto optimizer = gt::make_optimizer(options, parameters);
  const gpulab::data::ResidentBatcher batcher(train, norm, device, c.channels_last);
  const gpulab::data::EpochSampler sampler(
      train.size(), gpulab::data::parse_shuffle_mode(options.shuffle()), options.seed());
  // A GPU step has fixed shapes (a captured graph needs them): full batches.
  const int64_t per_epoch =
      c.gpu ? train.size() / f.batch_size : sampler.batches_per_epoch(f.batch_size);
  GPULAB_CHECK(per_epoch > 0, ErrorKind::kInvalidArgument,
               "--batch-size {} is larger than the {} training images", f.batch_size, train.size());

  // One step on the batch of `indices`; returns its loss (a device scalar).
  auto step = [&](const at::Tensor& indices, double lr) {
    const gpulab::data::Batch batch = batcher.batch(indices);
    at::Tensor input =
        c.channels_last ? batch.input.contiguous(at::MemoryFormat::ChannelsLast) : batch.input;
    gt::set_learn_rate(*optimizer, lr);
    if (c.grads_to_none) {
      for (auto& p : parameters) p.mutable_grad() = at::Tensor();
    } else {
      optimizer->zero_grad();
    }
    at::Tensor loss;
    {
      const gt::AutocastGuard autocast(c.bf16);
      loss = task.loss(model->forward(input).to(torch::kFloat32), batch).total;
    }
    loss.backward();
    gt::clip_gradients(parameters, options.gradient_threshold_method(),
                       options.gradient_threshold());
    optimizer->step();
    return loss.detach();
  };

  // gpu_graph: the indices live in a fixed device tensor the graph reads; the
  // learn rate is the schedule's constant (TrainOptions' default: none).
  std::unique_ptr<gpulab::bench::StepGraph> graph;
  at::Tensor graph_indices, graph_loss;
  at::Tensor order = sampler.order(1);
  if (c.graph) {
    const double lr = gt::learn_rate_at(options, 0);
    graph_indices = order.slice(0, 0, f.batch_size).to(device);
    // Autocast's weight-cast cache would keep tensors made outside the graph.
    at::autocast::set_autocast_cache_enabled(false);
    graph = std::make_unique<gpulab::bench::StepGraph>(device);
    graph->capture([&] { graph_loss = step(graph_indices, lr); });
  }

  std::vector<double> data_ms, fwd_ms, bwd_ms, step_ms, total_ms;
  std::vector<at::Tensor> pending;  // losses not yet read on the host
  double loss_first = 0, loss_last = 0;
  bool have_first = false;
  auto check_losses = [&](int64_t i) {
    if (pending.empty()) return;
    const auto values = torch::stack(pending).to(torch::kCPU, torch::kFloat64);
    const double* v = values.data_ptr<double>();
    for (size_t k = 0; k < pending.size(); ++k) {
      GPULAB_CHECK(std::isfinite(v[k]), ErrorKind::kRuntime, "case '{}': the loss is {} by step {}",
                   c.name, v[k], i);
    }
    if (!have_first) loss_first = v[0];
    have_first = true;
    loss_last = v[pending.size() - 1];
    pending.clear();
  };

  const int64_t total_steps = f.warmup + f.steps;
  double timed_seconds = 0;
  gpulab::core::Stopwatch timed;
  gpulab::bench::reset_peak_memory(device);
  for (int64_t i = 0; i < total_steps; ++i) {
    if (i == f.warmup) {
      check_losses(i);
      gpulab::bench::synchronize(device);
      timed = gpulab::core::Stopwatch();
    }
    const int64_t b = i % per_epoch;
    if (b == 0 && i > 0) order = sampler.order(1 + i / per_epoch);
    gpulab::core::Stopwatch sw;
    const int64_t begin = b * f.batch_size;
    const int64_t end = std::min(train.size(), begin + f.batch_size);
    const at::Tensor indices = order.slice(0, begin, end);
    const double lr = gt::learn_rate_at(options, static_cast<double>(i) / per_epoch);
    // Host times; on a GPU the work behind them runs later, asynchronously.
    double t_data = 0, t_zero = 0, t_fwd = 0, t_bwd = 0;
    if (c.gpu) {
      if (c.graph) graph_indices.copy_(indices, /*non_blocking=*/true);
      t_data = t_zero = sw.seconds();
      if (c.graph) {
        graph->replay();
        pending.push_back(graph_loss.clone());
      } else {
        pending.push_back(step(indices, lr));
      }
      t_fwd = t_bwd = sw.seconds();
    } else {
      // The CPU step with its phases timed, as the trainer runs it.
      const gpulab::data::Batch batch = batcher.batch(indices);
      at::Tensor input =
          c.channels_last ? batch.input.contiguous(at::MemoryFormat::ChannelsLast) : batch.input;
      t_data = sw.seconds();
      gt::set_learn_rate(*optimizer, lr);
      if (c.grads_to_none) {
        for (auto& p : parameters) p.mutable_grad() = at::Tensor();
      } else {
        optimizer->zero_grad();
      }
      t_zero = sw.seconds();
      at::Tensor output = model->forward(input);
      at::Tensor loss = task.loss(output.to(torch::kFloat32), batch).total;
      t_fwd = sw.seconds();
      loss.backward();
      t_bwd = sw.seconds();
      gt::clip_gradients(parameters, options.gradient_threshold_method(),
                         options.gradient_threshold());
      optimizer->step();
      pending.push_back(loss.detach());
    }
    // The trainer's NaN check: stack the pending losses, read them on the host.
    if (i == 0 || (i + 1) % sync_every == 0 || i + 1 == total_steps) check_losses(i);
    const double t_end = sw.seconds();
    if (i < f.warmup) continue;
    data_ms.push_back(1e3 * t_data);
    fwd_ms.push_back(1e3 * (t_fwd - t_zero));
    bwd_ms.push_back(1e3 * (t_bwd - t_fwd));
    step_ms.push_back(1e3 * (t_end - t_bwd + t_zero - t_data));
    total_ms.push_back(1e3 * t_end);
  }
  gpulab::bench::synchronize(device);
  timed_seconds = timed.seconds();
  if (c.graph) at::autocast::set_autocast_cache_enabled(true);
  // Validate once: training must make progress, or the timing means nothing.
  GPULAB_CHECK(loss_last < loss_first, ErrorKind::kRuntime,
               "case '{}': the loss did not fall ({} -> {})", c.name, loss_first, loss_last);
  at::globalContext().setUserEnabledMkldnn(true);

  CaseResult r;
  double sum = 0;
  for (double t : total_ms) sum += t;
  // On a GPU the host runs ahead of the device: only the synchronised wall
  // time of all timed steps counts.
  r.step_ms = device.is_cuda() ? 1e3 * timed_seconds / static_cast<double>(f.steps)
                               : sum / static_cast<double>(total_ms.size());
  r.step_ms_median = median(total_ms);
  r.images_per_second = 1e3 * static_cast<double>(f.batch_size) / r.step_ms;
  if (c.gpu) {
    // Host side only: queueing the step, and the steps that read the losses.
    r.phase_ms = {{"data", median(data_ms)}, {"launch", median(fwd_ms)}, {"rest", median(step_ms)}};
  } else {
    r.phase_ms = {{"data", median(data_ms)},
                  {"forward", median(fwd_ms)},
                  {"backward", median(bwd_ms)},
                  {"step", median(step_ms)}};
  }
  r.loss_first = loss_first;
  r.loss_last = loss_last;
  r.peak_memory_bytes = gpulab::bench::peak_memory_bytes(device);
  return r;
}

int run(int argc, char** argv) {
  const Flags f = parse_flags(argc, argv);
  GPULAB_CHECK(f.steps >= 200, ErrorKind::kInvalidArgument,
               "--steps: the protocol times at least 200 steps, got {}", f.steps);
  const c10::Device device = gpulab::bench::parse_device(f.device);
  const std::vector<Case> cases = parse_cases(f.cases, device.is_cuda());
  for (const Case& c : cases) {
    GPULAB_CHECK(c.gpu == device.is_cuda(), ErrorKind::kInvalidArgument,
                 "--cases: '{}' is a {} case but --device is {}; gpu* cases run on cuda, the "
                 "others on cpu",
                 c.name, c.gpu ? "GPU" : "CPU", device.str());
  }
  const int64_t sync_every = f.sync_every > 0 ? f.sync_every : device.is_cuda() ? 50 : 1;

  const gpulab::data::Dataset train =
      gpulab::data::load_idx_folder(f.data, gpulab::data::IdxSplit::kTrain);
  const gpulab::data::Normalization norm = gpulab::data::compute_normalization(train);

  nlohmann::json results = nlohmann::json::array();
  for (const Case& c : cases) {
    const CaseResult r = run_case(c, f, train, norm, device, sync_every);
    const int threads = c.threads > 0 ? c.threads : f.threads;
    std::string phases;
    for (const auto& [phase, ms] : r.phase_ms) {
      phases += fmt::format("{}{} {:.2f}", phases.empty() ? "" : ", ", phase, ms);
    }
    std::printf(
        "gpulab %-26s basic_cnn batch %lld threads %d %s: %6.0f images/s, %7.3f ms/step "
        "(median host ms: %s; loss %.3f -> %.3f)\n",
        c.name.c_str(), static_cast<long long>(f.batch_size), threads, device.str().c_str(),
        r.images_per_second, r.step_ms, phases.c_str(), r.loss_first, r.loss_last);
    std::fflush(stdout);
    results.push_back({{"case", c.name},
                       {"description", c.description},
                       {"threads", threads},
                       {"images_per_second", r.images_per_second},
                       {"step_ms", r.step_ms},
                       {"step_ms_median", r.step_ms_median},
                       {"phase_ms_median", r.phase_ms},
                       {"loss_first", r.loss_first},
                       {"loss_last", r.loss_last}});
    if (r.peak_memory_bytes >= 0) results.back()["peak_memory_bytes"] = r.peak_memory_bytes;
  }

  if (!f.json.empty()) {
    // Top-level figures are those of the first case; every case is in "cases".
    nlohmann::json j = {{"benchmark", "train_throughput"},
                        {"implementation", "gpulab"},
                        {"model", "basic_cnn"},
                        {"nf", f.nf},
                        {"batch_size", f.batch_size},
                        {"threads", results[0]["threads"]},
                        {"device", device.str()},
                        {"device_name", gpulab::core::describe_device(device)},
                        {"dtype", cases[0].bf16 ? "bfloat16 autocast" : "float32"},
                        {"sync_every", sync_every},
                        {"case", results[0]["case"]},
                        {"steps", f.steps},
                        {"images_per_second", results[0]["images_per_second"]},
                        {"step_ms", results[0]["step_ms"]},
                        {"machine", machine_description()},
                        {"git_commit", git_commit(".")},
                        {"torch_version", gpulab::compat::torch_version()},
                        {"cases", results}};
    gpulab::core::write_file_atomic(f.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return gpulab::bench::run_main("bench_train_throughput", run, argc, argv);
}
