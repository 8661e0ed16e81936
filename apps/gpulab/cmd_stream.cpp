// gpulab stream: any model over image files, a video or a camera through the
// worker pool, with live FPS and latency.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <sstream>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#include "gpulab/core/device.h"
#include "gpulab/core/text.h"
#include "gpulab/infer/stream.h"

namespace gpulab::app {
namespace {

std::atomic<int> g_stream_stops{0};

extern "C" void count_stop_request(int) {
  g_stream_stops.fetch_add(1);
}

struct StreamFlags {
  std::string model, weights, input, out, env = "auto", devices, when_full, on_error = "stop";
  std::string format = "png", stats_json;
  int64_t workers = 0, threads = 0, queue_size = 8, max_batch = 1, max_frames = 0, top_k = 1;
  double max_delay_ms = 2, rate = 0, fps = 0, stats_interval = 1;
  bool unordered = false;
  InputFlags input_flags;
};

std::vector<int> parse_gpu_list(const std::string& list) {
  std::vector<int> ids;
  if (list.empty()) return ids;
  std::stringstream parts(list);
  std::string part;
  while (std::getline(parts, part, ',')) {
    const std::optional<int> id = core::parse_int(part);
    GPULAB_CHECK(id.has_value(), ErrorKind::kInvalidArgument,
                 "--devices takes GPU numbers separated by commas (e.g. 0,1), got '{}'", list);
    ids.push_back(*id);
  }
  return ids;
}

int run_stream(const StreamFlags& f) {
  const core::ExecutionEnvironment env = core::parse_execution_environment(f.env);
  const std::vector<c10::Device> devices =
      infer::worker_devices(env, f.workers, parse_gpu_list(f.devices));
  infer::ModelProcessorOptions model;
  model.model(f.model).weights(f.weights).devices(devices);
  infer::set_input_size(model, f.input_flags.options());
  if (devices.front().is_cpu()) {
    model.threads_per_worker(
        infer::threads_per_worker(f.threads, static_cast<int64_t>(devices.size())));
  }
  infer::PoolOptions pool;
  pool.queue_size(f.queue_size)
      .ordered(!f.unordered)
      .max_batch(f.max_batch)
      .max_delay_ms(f.max_delay_ms)
      .on_error(infer::parse_error_policy(f.on_error));
  if (!f.when_full.empty()) pool.when_full(infer::parse_full_policy(f.when_full));
  infer::OutputWriterOptions output;
  output.out(f.out).format(f.format).top_k(f.top_k).fps(f.fps);
  infer::StreamOptions options;
  options.input(f.input)
      .model(model)
      .pool(pool)
      .when_full_given(!f.when_full.empty())
      .output(output)
      .rate(f.rate)
      .max_frames(f.max_frames)
      .stats_interval(f.stats_interval)
      .stats_json(f.stats_json);
  std::signal(SIGINT, count_stop_request);
  std::signal(SIGTERM, count_stop_request);
  const infer::StreamResult result = infer::run_stream(
      options, &g_stream_stops,
      [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  if (result.interrupted) {
    std::printf("Stopped on request after %lld frames (%s)\n",
                static_cast<long long>(result.stats.frames_read),
                result.abandoned ? "queued frames dropped" : "every frame taken was written");
  }
  std::printf("%s", infer::format_stats_summary(result.stats).c_str());
  return 0;
}

}  // namespace

Action add_stream_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "stream",
      "A model over images, a video or a camera on every device: styled frames, overlays or "
      "labels, with live FPS and latency");
  auto f = std::make_shared<StreamFlags>();
  cmd->add_option("--model", f->model,
                  "RUN_DIR or model file; with --weights, the architecture (e.g. transformer_net)")
      ->required();
  cmd->add_option("--weights", f->weights,
                  "Imported weights for --model ARCH (safetensors, .pth, TorchScript, .mat)");
  cmd->add_option("--input", f->input,
                  "Image file, folder (recursive, sorted), video file, image-sequence pattern "
                  "(img_%04d.png), camera:N (V4L2 /dev/videoN), or synthetic:WxH@FPS[/COUNT] (a "
                  "test pattern at a camera's pace)")
      ->required();
  cmd->add_option(
         "--out", f->out,
         "Folder (one image per frame: styled image, or label map + overlay), video "
         "file (.avi MJPG, .mp4, .mkv), or FILE.jsonl (a JSON line per frame; what a "
         "classifier writes, also into a folder as predictions.jsonl), or null (nothing written: "
         "to measure)")
      ->required();
  cmd->add_option("--env", f->env,
                  "auto | cpu | gpu | multi-gpu (default auto: every GPU, else CPU)");
  cmd->add_option("--workers", f->workers,
                  "Workers, each with its own model replica (default: one per GPU; 1 on CPU, "
                  "where workers share the cores)");
  cmd->add_option("--devices", f->devices, "GPUs to use, e.g. 0,1 (default: every GPU)");
  cmd->add_option("--threads", f->threads,
                  "CPU: LibTorch threads per worker (default: the cores shared among workers)");
  cmd->add_option("--queue-size", f->queue_size,
                  "Frames waiting for a worker, the most held in memory (default 8)");
  cmd->add_option("--when-full", f->when_full,
                  "Full queue: block (never lose a frame), drop-oldest, drop-newest (counted); "
                  "default block for files and videos, drop-oldest for cameras");
  cmd->add_flag("--unordered", f->unordered,
                "Write frames as workers finish them, not in input order");
  cmd->add_option("--max-batch", f->max_batch,
                  "Dynamic batching: queued frames of equal size a worker runs together "
                  "(default 1)");
  cmd->add_option("--max-delay-ms", f->max_delay_ms,
                  "Dynamic batching: how long a worker waits for more frames (default 2 ms)");
  cmd->add_option("--rate", f->rate,
                  "Desired prediction rate, frames per second handed to the workers (default: "
                  "as fast as they go; a camera's extra frames are passed over)");
  cmd->add_option("--fps", f->fps, "Output video frame rate (default: the source's, else 25)");
  cmd->add_option("--max-frames", f->max_frames, "Stop after this many frames (default: all)");
  cmd->add_option("--on-error", f->on_error,
                  "A frame that fails: stop (default) or skip (left out, counted)");
  cmd->add_option("--format", f->format, "Image format of frames written to a folder (png, jpg)");
  cmd->add_option("--top-k", f->top_k, "Classifiers: labels per frame (default 1)");
  cmd->add_option("--stats-json", f->stats_json, "Write the final statistics as JSON to FILE");
  cmd->add_option("--stats-interval", f->stats_interval,
                  "Seconds between statistics lines on stderr (default 1; 0 = summary only)");
  f->input_flags.add_to(*cmd);
  return [f]() { return run_stream(*f); };
}

}  // namespace gpulab::app
