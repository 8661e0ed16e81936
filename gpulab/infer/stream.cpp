// The stream's reader loop: source -> rate control -> pool; the pool's
// writer thread feeds the OutputWriter; statistics around both.
#include "gpulab/infer/stream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/infer/frame_source.h"
#include "gpulab/infer/predictor.h"

namespace gpulab::infer {
namespace {

int requests(const std::atomic<int>* stop_requests) {
  return stop_requests == nullptr ? 0 : stop_requests->load();
}

std::vector<std::string> device_names(const std::vector<c10::Device>& devices) {
  std::vector<std::string> names;
  for (const auto& d : devices) names.push_back(d.str());
  return names;
}

// Paces submissions at `rate` frames per second (0 = no pacing).
class RateControl {
 public:
  explicit RateControl(double rate) : rate_(rate) {}
  // A file source waits for its slot; a live source's frame is kept only
  // when its slot is due (false: pass it over).
  bool admit(bool live) {
    if (rate_ <= 0) return true;
    const auto now = StreamClock::now();
    if (!started_) {
      started_ = true;
      due_ = now;
    }
    if (now < due_) {
      if (live) return false;
      std::this_thread::sleep_until(due_);
    }
    const auto period = std::chrono::duration_cast<StreamClock::duration>(
        std::chrono::duration<double>(1.0 / rate_));
    // A late frame does not earn a burst of catch-up frames.
    due_ = std::max(due_ + period, StreamClock::now() - period);
    return true;
  }

 private:
  double rate_;
  bool started_ = false;
  StreamClock::time_point due_{};
};

}  // namespace

StreamResult run_stream(const StreamOptions& options, const std::atomic<int>* stop_requests,
                        const std::function<void(const std::string&)>& print) {
  const ModelProcessorOptions& model = options.model();
  GPULAB_CHECK(options.rate() >= 0, ErrorKind::kInvalidArgument, "`rate` must be >= 0, got {}",
               options.rate());
  GPULAB_CHECK(options.stats_interval() >= 0, ErrorKind::kInvalidArgument,
               "`stats_interval` must be >= 0 seconds, got {}", options.stats_interval());
  GPULAB_CHECK(options.max_frames() >= 0, ErrorKind::kInvalidArgument,
               "`max_frames` must be >= 0, got {}", options.max_frames());
  std::unique_ptr<FrameSource> source = open_frame_source(options.input());
  // The main thread reads the metadata; each worker loads its own replica.
  const models::ModelMetadata metadata =
      load_model(model.model(), model.weights(), model.input()).metadata;
  OutputWriter writer(metadata, options.output(), source->fps());

  StreamResult result;
  result.source = source->describe();
  result.output = writer.describe();
  PoolOptions pool_options = options.pool();
  if (!options.when_full_given()) {
    pool_options.when_full(source->live() ? FullPolicy::kDropOldest : FullPolicy::kBlock);
  }
  print(fmt::format("Stream: {} -> {} workers ({}) -> {}; queue {} ({}), {} order", result.source,
                    model.devices().size(), fmt::join(device_names(model.devices()), ", "),
                    result.output, pool_options.queue_size(), to_string(pool_options.when_full()),
                    pool_options.ordered() ? "input" : "finishing"));

  StreamStats stats(device_names(model.devices()));
  ResultSink sink = [&](PoolResult&& r) {
    OutputItem item;
    item.index = r.frame.index;
    item.name = r.frame.name;
    item.from_video = r.frame.path.empty();  // decoded by the source: a video or camera frame
    if (r.frame.image.defined()) {
      item.source_height = r.frame.image.size(0);
      item.source_width = r.frame.image.size(1);
    }
    item.image = std::move(r.output.image);
    item.output = std::move(r.output.output);
    writer.write(item);
  };
  PoolEvents events;
  events.frame_failed = [&](const Frame& frame, const std::string& why) {
    print(fmt::format("Skipped frame {} ('{}'): {}", frame.index, frame.name, why));
  };
  events.worker_failed = [&](int worker, const std::string& why) {
    print(fmt::format("Worker {} ({}) could not start and is left out: {}", worker,
                      model.devices().at(static_cast<size_t>(worker)).str(), why));
  };
  WorkerPool pool(static_cast<int>(model.devices().size()), model_processors(model), sink,
                  pool_options, &stats, events);
  std::unique_ptr<StatsReporter> reporter;
  if (options.stats_interval() > 0) {
    reporter = std::make_unique<StatsReporter>(
        stats,
        std::chrono::milliseconds(std::max<int64_t>(
            1, static_cast<int64_t>(std::llround(options.stats_interval() * 1000)))),
        print);
  }

  RateControl rate(options.rate());
  int64_t submitted = 0;
  while (requests(stop_requests) == 0 && !pool.stopped() &&
         (options.max_frames() == 0 || submitted < options.max_frames())) {
    std::optional<Frame> frame = source->next();
    if (!frame) break;
    if (!rate.admit(source->live())) continue;
    frame->index = submitted++;  // the pool's sequence: no gaps where frames were passed over
    stats.frame_read();
    pool.submit(std::move(*frame));
  }
  result.interrupted = requests(stop_requests) > 0;
  // A second stop request while the pool drains drops what is still queued.
  std::atomic<bool> drained{false};
  std::thread watcher;
  if (stop_requests != nullptr) {
    watcher = std::thread([&] {
      while (!drained && requests(stop_requests) < 2) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!drained) pool.drop_queued();
    });
  }
  auto finish_all = [&] {
    drained = true;
    if (watcher.joinable()) watcher.join();
    if (reporter) reporter->stop();
    writer.close();
    result.abandoned = requests(stop_requests) >= 2;
    result.stats = stats.snapshot();
    if (!options.stats_json().empty()) {
      nlohmann::json j = stats_to_json(result.stats);
      j["source"] = result.source;
      j["output"] = result.output;
      j["interrupted"] = result.interrupted;
      core::write_file_atomic(options.stats_json(), j.dump(2) + "\n");
    }
  };
  try {
    pool.finish();
  } catch (...) {
    finish_all();
    throw;
  }
  finish_all();
  return result;
}

PredictFilesResult predict_files(
    const std::vector<std::string>& files, const ModelProcessorOptions& model, int64_t max_batch,
    OutputWriter& writer, const std::function<void(nlohmann::json&&)>& on_record,
    const std::function<void(const std::string&, const std::string&)>& on_skipped) {
  GPULAB_CHECK(max_batch >= 1, ErrorKind::kInvalidArgument, "`batch_size` must be >= 1, got {}",
               max_batch);
  PredictFilesResult result;
  std::mutex skipped_mutex;
  PoolEvents events;
  events.frame_failed = [&](const Frame& frame, const std::string& why) {
    std::lock_guard<std::mutex> lock(skipped_mutex);
    ++result.skipped;
    if (on_skipped) on_skipped(frame.path, why);
  };
  ResultSink sink = [&](PoolResult&& r) {
    OutputItem item;
    item.index = r.frame.index;
    item.name = r.frame.name;
    item.image = std::move(r.output.image);
    item.output = std::move(r.output.output);
    on_record(writer.write(item));
  };
  // The queue holds file names only; a worker decodes its batch.
  WorkerPool pool(static_cast<int>(model.devices().size()), model_processors(model), sink,
                  PoolOptions().queue_size(2 * max_batch).max_batch(max_batch).max_delay_ms(5),
                  nullptr, events);
  for (size_t i = 0; i < files.size() && !pool.stopped(); ++i) {
    Frame frame;
    frame.index = static_cast<int64_t>(i);
    frame.name = files[i];
    frame.path = files[i];
    frame.read_at = StreamClock::now();
    pool.submit(std::move(frame));
  }
  pool.finish();
  writer.close();
  result.written = pool.frames_written();
  return result;
}

}  // namespace gpulab::infer
