// Data-parallel step time on CPU ranks (Gloo) or GPU ranks (NCCL): how much of
// the gradient all-reduce the bucketed reducer hides under backward. Run as ranks:
//   gpulab launch -n 2 -- build/bench/bench_dist_step --model resnet18 --json FILE
//   gpulab launch -n 2 -- build/bench/bench_dist_step --device cuda --json FILE
// or as one process (--one-rank-group 1 still builds the process group, so
// NCCL runs with a world of one).
// Each rank times three ways of doing the same step, interleaved:
//   compute  forward + backward + SGD step, no communication (C)
//   sync     the same, then every bucket all-reduced after backward (S)
//   overlap  the GradientReducer: buckets all-reduced from backward's hooks (O)
// hidden share = 1 - (O - C) / (S - C): the part of the communication that
// no longer adds to the step. With --allreduce-mib M each rank also times
// all-reduces of one M MiB float32 bucket: algorithm bandwidth = bytes / time,
// bus bandwidth = algbw * 2 (n - 1) / n (nccl-tests' convention; 0 for one
// rank, where only the call's fixed cost is measured). Rank 0 writes the
// JSON; the PyTorch DDP peer is bench/peers/ddp_step.py.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "bench/bench_device.h"
#include "bench/bench_env.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/gradient_reducer.h"
#include "gpulab/distributed/world.h"
#include "gpulab/models/registry.h"
#include "gpulab/train/foreach_sgd.h"

namespace {

using namespace gpulab;

struct Flags {
  std::string model = "resnet18";
  int64_t batch_size = 16;  // per rank
  int64_t size = 64;
  int64_t channels = 3;
  int64_t iters = 10;
  int64_t warmup = 3;
  int threads = 1;
  double bucket_cap_mb = 25;
  std::string device = "cpu";    // cpu or cuda: each rank takes GPU local_rank % GPUs
  std::string backend = "auto";  // auto (NCCL for GPUs, Gloo for CPUs), gloo, nccl
  bool one_rank_group = false;   // a process group even for a world of one
  double allreduce_mib = 0;      // 0: no bucket all-reduce timing
  int64_t allreduce_iters = 20;
  std::string json;
};

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    GPULAB_CHECK(i + 1 < argc, ErrorKind::kInvalidArgument, "{} needs a value", arg);
    const std::string v = argv[++i];
    if (arg == "--model")
      f.model = v;
    else if (arg == "--batch-size")
      f.batch_size = std::stoll(v);
    else if (arg == "--size")
      f.size = std::stoll(v);
    else if (arg == "--channels")
      f.channels = std::stoll(v);
    else if (arg == "--iters")
      f.iters = std::stoll(v);
    else if (arg == "--warmup")
      f.warmup = std::stoll(v);
    else if (arg == "--threads")
      f.threads = std::stoi(v);
    else if (arg == "--bucket-cap-mb")
      f.bucket_cap_mb = std::stod(v);
    else if (arg == "--device")
      f.device = v;
    else if (arg == "--backend")
      f.backend = v;
    else if (arg == "--one-rank-group")
      f.one_rank_group = v == "1" || v == "true";
    else if (arg == "--allreduce-mib")
      f.allreduce_mib = std::stod(v);
    else if (arg == "--allreduce-iters")
      f.allreduce_iters = std::stoll(v);
    else if (arg == "--json")
      f.json = v;
    else
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "unknown flag {}; see the file's header", arg);
  }
  return f;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Median milliseconds of one all-reduce of a `mib` MiB float32 bucket.
double time_allreduce(distributed::Communicator& comm, const c10::Device& device, double mib,
                      int64_t iters) {
  const auto numel = static_cast<int64_t>(mib * 1024 * 1024 / 4);
  std::vector<at::Tensor> bucket{torch::ones({numel}, torch::TensorOptions().device(device))};
  std::vector<double> ms;
  for (int64_t i = 0; i < iters + 3; ++i) {
    comm.barrier();
    bench::synchronize(device);
    const auto t = std::chrono::steady_clock::now();
    comm.all_reduce_sum(bucket);
    bench::synchronize(device);
    if (i >= 3) ms.push_back(1e3 * seconds_since(t));
  }
  // Validate once: every element is the sum of ones over the ranks, raised to
  // the power of the calls (each call sums the previous result).
  const double expected = std::pow(static_cast<double>(comm.world().size), iters + 3);
  const double got = bucket[0][numel - 1].item<double>();
  GPULAB_CHECK(std::abs(got - expected) <= 1e-3 * expected, ErrorKind::kRuntime,
               "all-reduce: expected {} in the bucket's last element, found {}", expected, got);
  return bench::median(ms);
}

int run(int argc, char** argv) {
  const Flags f = parse_flags(argc, argv);
  core::configure_threads(f.threads);
  const distributed::World world = distributed::World::from_environment();
  c10::Device device(c10::kCPU);
  if (f.device != "cpu") {
    const c10::Device first = bench::parse_device(f.device == "cuda" ? "cuda" : f.device);
    device =
        c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>((first.index() + world.local_rank) %
                                                              core::cuda_device_count()));
  }
  auto comm = distributed::connect(
      world, device,
      distributed::CommunicatorOptions().backend(f.backend).group_for_one_rank(f.one_rank_group));
  models::ModelConfig config;
  config.arch = models::resolve_model_name(f.model);
  config.num_classes = 10;
  config.in_channels = f.channels;
  config.height = config.width = f.size;
  torch::manual_seed(0);
  auto model = models::create_model(config);
  model->to(device);
  model->train();
  std::vector<at::Tensor> params = model->parameters();
  gpulab::train::ForeachSGD sgd(params, torch::optim::SGDOptions(0.01).momentum(0.9));
  distributed::GradientReducer reducer(params, *comm,
                                distributed::ReducerOptions().bucket_cap_mb(f.bucket_cap_mb));
  torch::manual_seed(1 + world.rank);
  const auto x = torch::randn({f.batch_size, f.channels, f.size, f.size}).to(device);
  const auto y = torch::randint(0, 10, {f.batch_size}).to(device);

  // The sync baseline reduces the same buckets, one blocking call each.
  std::vector<at::Tensor> flat;
  for (const auto& bucket : reducer.buckets()) {
    int64_t n = 0;
    for (size_t k : bucket) n += params[k].numel();
    flat.push_back(torch::zeros({n}, torch::TensorOptions().device(device)));
  }
  auto step = [&](const std::string& mode) {
    for (auto& p : params) p.mutable_grad() = at::Tensor();
    reducer.set_sync(mode == "overlap");
    if (mode == "overlap") reducer.prepare_for_backward();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    if (mode == "overlap") reducer.finish();
    if (mode == "sync") {
      for (size_t b = 0; b < flat.size(); ++b) {
        int64_t off = 0;
        for (size_t k : reducer.buckets()[b]) {
          flat[b].narrow(0, off, params[k].numel()).copy_(params[k].grad().reshape(-1));
          off += params[k].numel();
        }
        std::vector<at::Tensor> one{flat[b]};
        comm->all_reduce_sum(one);
      }
    }
    sgd.step();
  };
  std::map<std::string, std::vector<double>> ms;
  const std::vector<std::string> modes = {"compute", "sync", "overlap"};
  for (int64_t i = 0; i < f.warmup + f.iters; ++i) {
    for (const auto& mode : modes) {
      comm->barrier();
      bench::synchronize(device);
      const auto t = std::chrono::steady_clock::now();
      step(mode);
      bench::synchronize(device);
      if (i >= f.warmup) ms[mode].push_back(1e3 * seconds_since(t));
    }
  }
  const double c = bench::median(ms["compute"]);
  const double s = bench::median(ms["sync"]);
  const double o = bench::median(ms["overlap"]);
  const double hidden = s > c ? 1.0 - (o - c) / (s - c) : 0.0;
  int64_t grad_bytes = 0;
  for (auto& p : params) grad_bytes += p.numel() * 4;
  double allreduce_ms = -1;
  if (f.allreduce_mib > 0)
    allreduce_ms = time_allreduce(*comm, device, f.allreduce_mib, f.allreduce_iters);
  std::vector<double> launch_ms;
  for (double t : reducer.last_trace().launch_seconds) launch_ms.push_back(1e3 * t);
  if (world.is_main()) {
    nlohmann::json j = {{"benchmark", "dist_step"},
                        {"framework", "gpulab"},
                        {"machine", {{"host", bench::host_name()}, {"cpu", bench::cpu_model()}}},
                        {"commit", bench::git_commit(argv[0])},
                        {"model", config.arch},
                        {"input", {f.channels, f.size, f.size}},
                        {"world_size", world.size},
                        {"backend", comm->backend()},
                        {"device", device.str()},
                        {"device_name", core::describe_device(device)},
                        {"threads_per_rank", f.threads},
                        {"batch_per_rank", f.batch_size},
                        {"buckets", reducer.buckets().size()},
                        {"gradient_megabytes", grad_bytes / 1e6},
                        {"iters", f.iters},
                        {"ms_per_step", {{"compute", c}, {"sync", s}, {"overlap", o}}},
                        {"allreduce_ms_exposed_sync", s - c},
                        {"allreduce_ms_exposed_overlap", o - c},
                        {"hidden_share", hidden},
                        {"last_overlap_step",
                         {{"bucket_launch_ms", launch_ms},
                          {"backward_end_ms", 1e3 * reducer.last_trace().backward_end_seconds},
                          {"wait_ms", 1e3 * reducer.last_trace().wait_seconds}}}};
    if (allreduce_ms > 0) {
      const double bytes = f.allreduce_mib * 1024 * 1024;
      const double algbw = bytes / (allreduce_ms / 1e3) / 1e9;
      const double n = world.size;
      j["allreduce"] = {{"bucket_mib", f.allreduce_mib},
                        {"iters", f.allreduce_iters},
                        {"ms_median", allreduce_ms},
                        {"algbw_gb_per_s", algbw},
                        {"busbw_gb_per_s", algbw * 2 * (n - 1) / n}};
    }
    std::printf("%s\n", j.dump(2).c_str());
    if (!f.json.empty()) core::write_file_atomic(f.json, j.dump(2) + "\n");
  }
  comm->barrier();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return gpulab::bench::run_main("bench_dist_step", run, argc, argv);
}
