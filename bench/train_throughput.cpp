// bench_train_throughput: images/s of the trainer's step (basic_cnn on
// Fashion-MNIST, resident data, sgdm) for named variants of the CPU step.
//
//   bench_train_throughput [--batch-size 128] [--threads 2] [--steps 300]
//       [--warmup 10] [--nf 8] [--data DIR] [--cases=default,channels_last]
//       [--json FILE]
//
// Protocol (STYLE.md 16): warm up, validate once (the loss falls), time many
// steps with phase timings (data, forward, backward, step), write JSON.
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
#include "gpulab/train/train_options.h"

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
  };
  return cases;
}

std::string valid_case_names() {
  std::string s;
  for (const auto& c : all_cases()) s += (s.empty() ? "" : ", ") + c.name;
  return s;
}

std::vector<Case> parse_cases(const std::string& list) {
  std::vector<Case> out;
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    if (name == "all") return all_cases();
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
      "  --cases=a,b         variants to time (default 'default'); valid: %s, all\n"
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
};

// Runs `c` the way Trainer::fit runs an iteration on a CPU.
CaseResult run_case(const Case& c, const Flags& f, const gpulab::data::Dataset& train,
                    const gpulab::data::Normalization& norm) {
  namespace gt = gpulab::train;
  at::globalContext().setUserEnabledMkldnn(c.mkldnn);
  gpulab::core::configure_threads(c.threads > 0 ? c.threads : f.threads);
  const gt::TrainOptions options = gt::TrainOptions().batch_size(f.batch_size);
  const c10::Device device(c10::kCPU);

  gpulab::core::seed_everything(options.seed());
  const gpulab::tasks::ClassificationTask task("basic_cnn", {{"nf", f.nf}});
  auto model = gpulab::models::create_model(task.model_config(train));
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
  const int64_t per_epoch = sampler.batches_per_epoch(f.batch_size);

  std::vector<double> data_ms, fwd_ms, bwd_ms, step_ms, total_ms;
  double loss_first = 0, loss_last = 0;
  at::Tensor order = sampler.order(1);
  const int64_t total_steps = f.warmup + f.steps;
  for (int64_t i = 0; i < total_steps; ++i) {
    const int64_t b = i % per_epoch;
    if (b == 0 && i > 0) order = sampler.order(1 + i / per_epoch);
    gpulab::core::Stopwatch sw;
    const int64_t begin = b * f.batch_size;
    const int64_t end = std::min(train.size(), begin + f.batch_size);
    const gpulab::data::Batch batch = batcher.batch(order.slice(0, begin, end));
    at::Tensor input =
        c.channels_last ? batch.input.contiguous(at::MemoryFormat::ChannelsLast) : batch.input;
    const double t_data = sw.seconds();

    gt::set_learn_rate(*optimizer, gt::learn_rate_at(options, static_cast<double>(i) / per_epoch));
    if (c.grads_to_none) {
      for (auto& p : parameters) p.mutable_grad() = at::Tensor();
    } else {
      optimizer->zero_grad();
    }
    const double t_zero = sw.seconds();
    at::Tensor output = model->forward(input);
    at::Tensor loss = task.loss(output.to(torch::kFloat32), batch.target);
    const double t_fwd = sw.seconds();
    loss.backward();
    const double t_bwd = sw.seconds();
    gt::clip_gradients(parameters, options.gradient_threshold_method(),
                       options.gradient_threshold());
    optimizer->step();
    // The trainer's per-step NaN check on CPU: stack the pending loss, read it.
    const auto values = torch::stack({loss.detach()}).to(torch::kCPU, torch::kFloat64);
    const double value = values.data_ptr<double>()[0];
    const double t_end = sw.seconds();
    GPULAB_CHECK(std::isfinite(value), ErrorKind::kRuntime, "case '{}': the loss is {} at step {}",
                 c.name, value, i);
    if (i == 0) loss_first = value;
    loss_last = value;
    if (i < f.warmup) continue;
    data_ms.push_back(1e3 * t_data);
    fwd_ms.push_back(1e3 * (t_fwd - t_zero));
    bwd_ms.push_back(1e3 * (t_bwd - t_fwd));
    step_ms.push_back(1e3 * (t_end - t_bwd + t_zero - t_data));
    total_ms.push_back(1e3 * t_end);
  }
  // Validate once: training must make progress, or the timing means nothing.
  GPULAB_CHECK(loss_last < loss_first, ErrorKind::kRuntime,
               "case '{}': the loss did not fall ({} -> {})", c.name, loss_first, loss_last);
  at::globalContext().setUserEnabledMkldnn(true);

  CaseResult r;
  double sum = 0;
  for (double t : total_ms) sum += t;
  r.step_ms = sum / static_cast<double>(total_ms.size());
  r.step_ms_median = median(total_ms);
  r.images_per_second = 1e3 * static_cast<double>(f.batch_size) / r.step_ms;
  r.phase_ms = {{"data", median(data_ms)},
                {"forward", median(fwd_ms)},
                {"backward", median(bwd_ms)},
                {"step", median(step_ms)}};
  r.loss_first = loss_first;
  r.loss_last = loss_last;
  return r;
}

int run(int argc, char** argv) {
  const Flags f = parse_flags(argc, argv);
  GPULAB_CHECK(f.steps >= 200, ErrorKind::kInvalidArgument,
               "--steps: the protocol times at least 200 steps, got {}", f.steps);
  const std::vector<Case> cases = parse_cases(f.cases);

  const gpulab::data::Dataset train =
      gpulab::data::load_idx_folder(f.data, gpulab::data::IdxSplit::kTrain);
  const gpulab::data::Normalization norm = gpulab::data::compute_normalization(train);

  nlohmann::json results = nlohmann::json::array();
  for (const Case& c : cases) {
    const CaseResult r = run_case(c, f, train, norm);
    const int threads = c.threads > 0 ? c.threads : f.threads;
    std::printf(
        "gpulab %-26s basic_cnn batch %lld threads %d: %6.0f images/s, %7.2f ms/step "
        "(data %.2f, forward %.2f, backward %.2f, step %.2f ms; loss %.3f -> %.3f)\n",
        c.name.c_str(), static_cast<long long>(f.batch_size), threads, r.images_per_second,
        r.step_ms, r.phase_ms.at("data"), r.phase_ms.at("forward"), r.phase_ms.at("backward"),
        r.phase_ms.at("step"), r.loss_first, r.loss_last);
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
  }

  if (!f.json.empty()) {
    // Top-level figures are those of the first case; every case is in "cases".
    nlohmann::json j = {{"benchmark", "train_throughput"},
                        {"implementation", "gpulab"},
                        {"model", "basic_cnn"},
                        {"nf", f.nf},
                        {"batch_size", f.batch_size},
                        {"threads", results[0]["threads"]},
                        {"device", "cpu"},
                        {"dtype", "float32"},
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
