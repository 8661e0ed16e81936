// gpulab bench loader: images/s of read + decode + augment + collate +
// normalise through the streaming loader, the figure the training loop sees.
#include <torch/torch.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "apps/gpulab/cli_messages.h"
#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#include "apps/gpulab/environment.h"
#include "apps/gpulab/loader_flags.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/stopwatch.h"
#include "gpulab/data/loader.h"
#include "gpulab/data/training_data.h"

namespace gpulab::app {
namespace {

struct BenchLoaderFlags {
  std::string data, json;
  int64_t batch_size = 64;
  int64_t batches = 0;  // 0 = one pass over the set (at most 100 batches)
  int64_t warmup = 2;
  uint64_t seed = 0;
  bool whole_jpeg = false;  // decode whole JPEGs (the loader's region decoding off)
  DataFlags data_flags;
  LoaderFlags loader_flags;
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string host_name() {
  char name[256] = {0};
  return ::gethostname(name, sizeof(name) - 1) == 0 ? name : "unknown";
}

// Steps of `batch` indices drawn from a seeded permutation, `count` of them.
std::vector<at::Tensor> random_steps(int64_t size, int64_t batch, int64_t count, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<at::Tensor> steps;
  at::Tensor order = torch::randperm(size, torch::kInt64);
  for (int64_t s = 0, at = 0; s < count; ++s, at += batch) {
    if (at + batch > size) {
      order = torch::randperm(size, torch::kInt64);
      at = 0;
    }
    steps.push_back(order.slice(0, at, std::min(size, at + batch)).clone());
  }
  return steps;
}

int run_bench_loader(const BenchLoaderFlags& f, const CLI::App& cmd) {
  GPULAB_CHECK(!f.data.empty(), ErrorKind::kInvalidArgument,
               "bench loader needs --data DIR|s3://…");
  GPULAB_CHECK(f.batch_size > 0 && f.batches >= 0 && f.warmup >= 0, ErrorKind::kInvalidArgument,
               "--batch-size must be > 0, --batches and --warmup >= 0");
  nlohmann::json d = nlohmann::json::object();
  f.data_flags.to_spec(d, cmd);
  f.loader_flags.to_spec(d, cmd);
  data::DataRequest request;
  request.options = data::DataOptions::from_json(d, "flags");
  request.options.loader_threads = f.loader_flags.threads;  // --threads and --loader-threads alike
  if (request.options.transforms.empty()) {
    // The case: decode + random resized crop 224 + flip (+ normalise).
    request.options.transforms = {{"random_resized_crop", 224}, {"rand_x_reflection", true}};
  }
  request.seed = f.seed;
  const data::RemoteAccess remote = remote_access_from_environment();
  request.index_cache_dir = remote.index_cache_dir;
  // Remote data is fetched into the cache first; the loader reads the local view.
  request.train = data::resolve_data_path(f.data, request.options, remote, cli_log(stdout));
  const data::DataPath& path = request.train;
  const data::StreamingPlan data = data::plan_streaming(request);
  const int channels = data.transforms.channels();
  // Normalisation runs as in training; its values do not change the cost.
  const data::Normalization norm{std::vector<double>(channels, 0.5),
                                 std::vector<double>(channels, 0.25)};
  data::LoaderOptions options = data.options;
  options.jpeg_region_decode(!f.whole_jpeg);
  data::StreamingLoader loader(data.train, data.transforms, norm, options);
  const int64_t size = loader.size();
  const int64_t batches =
      f.batches > 0 ? f.batches : std::max<int64_t>(1, std::min<int64_t>(100, size / f.batch_size));

  // Validate once before timing: shape, dtype, finite values.
  loader.start_epoch(0, random_steps(size, f.batch_size, std::max<int64_t>(1, f.warmup), f.seed));
  for (int64_t i = 0; i < std::max<int64_t>(1, f.warmup); ++i) {
    data::Batch b = loader.next();
    GPULAB_CHECK(b.input.dim() == 4 && b.input.size(1) == channels &&
                     b.input.size(2) == data.transforms.height() &&
                     torch::isfinite(b.input).all().item<bool>(),
                 ErrorKind::kInternal, "the loader produced a malformed batch {}",
                 c10::str(b.input.sizes()));
  }
  auto steps = random_steps(size, f.batch_size, batches, f.seed + 1);
  core::Stopwatch clock;
  loader.start_epoch(1, std::move(steps));
  int64_t images = 0;
  for (int64_t i = 0; i < batches; ++i) images += loader.next().target.size(0);
  const double seconds = clock.seconds();
  const int threads = data.options.threads() > 0
                          ? data.options.threads()
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nlohmann::json out = {{"benchmark", "loader"},
                        {"implementation", "gpulab"},
                        {"data", path.source},
                        {"images_per_second", static_cast<double>(images) / seconds},
                        {"images", images},
                        {"seconds", seconds},
                        {"batches", batches},
                        {"batch_size", f.batch_size},
                        {"threads", threads},
                        {"prefetch", data.options.prefetch()},
                        {"jpeg_decode", f.whole_jpeg ? "whole" : "region"},
                        {"output", {channels, data.transforms.height(), data.transforms.width()}},
                        {"transforms", request.options.transforms},
                        {"skipped_files", loader.skipped_files()},
                        {"machine", host_name()},
                        {"cpu", cpu_model()},
                        {"gpulab_version", GPULAB_VERSION}};
  std::printf("loader: %.1f images/s (%lld images in %.2f s, %d threads, batch %lld)\n",
              out["images_per_second"].get<double>(), static_cast<long long>(images), seconds,
              threads, static_cast<long long>(f.batch_size));
  if (!f.json.empty()) core::write_file_atomic(f.json, out.dump(2) + "\n");
  return 0;
}

}  // namespace

Action add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Measure parts of gpulab on this machine");
  bench->require_subcommand(1);
  auto* cmd = bench->add_subcommand(
      "loader", "Images/s of read + decode + augment + collate + normalise (streaming loader)");
  auto f = std::make_shared<BenchLoaderFlags>();
  cmd->add_option("--data", f->data,
                  "Image folder (one sub-folder per class), s3://BUCKET/PREFIX or an http(s) URL "
                  "list (.txt)")
      ->required();
  cmd->add_option("--batch-size", f->batch_size, "Images per batch (default 64)");
  cmd->add_option("--batches", f->batches,
                  "Timed batches (default 0 = one pass over the set, at most 100)");
  cmd->add_option("--warmup", f->warmup, "Batches before timing (default 2)");
  cmd->add_option("--seed", f->seed, "Sample order and augmentation seed (default 0)");
  cmd->add_option("--threads", f->loader_flags.threads,
                  "Decode threads (default 0 = one per core)");
  cmd->add_option("--json", f->json, "Write the result as JSON to FILE");
  cmd->add_flag("--whole-jpeg", f->whole_jpeg,
                "Decode whole JPEGs instead of only the crop's region (for comparison)");
  f->data_flags.add_to(*cmd);
  f->loader_flags.add_to(*cmd);
  return [f, cmd]() { return run_bench_loader(*f, *cmd); };
}

}  // namespace gpulab::app
