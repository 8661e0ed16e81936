// `gpulab stream` as a library call: frames from a source (files, a video, a
// camera) through the worker pool into a writer (a folder, a video file,
// JSON lines), with live statistics once a second and at the end.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "gpulab/core/options.h"
#include "gpulab/infer/frame_processor.h"
#include "gpulab/infer/output_writer.h"
#include "gpulab/infer/stream_stats.h"
#include "gpulab/infer/worker_pool.h"

namespace gpulab::infer {

struct StreamOptions {
  // A source spec for open_frame_source: image file, folder, video file,
  // image-sequence pattern, camera:N, synthetic:WxH@FPS[/COUNT].
  GPULAB_ARG(std::string, input);
  GPULAB_ARG(ModelProcessorOptions, model);
  GPULAB_ARG(PoolOptions, pool);
  // Whether pool().when_full() was chosen by the user; otherwise block for
  // files and videos (no frame lost), drop-oldest for live sources.
  GPULAB_ARG(bool, when_full_given) = false;
  GPULAB_ARG(OutputWriterOptions, output);
  // The desired prediction rate: frames handed to the pool per second (0 =
  // as fast as the source and the workers go). A file source is paced; a
  // live source's frames between two due times are passed over.
  GPULAB_ARG(double, rate) = 0;
  // Stop after this many frames (0 = the whole source).
  GPULAB_ARG(int64_t, max_frames) = 0;
  // Seconds between two statistics lines (0 = only the summary).
  GPULAB_ARG(double, stats_interval) = 1;
  // Where the final statistics go as JSON ("" = nowhere).
  GPULAB_ARG(std::string, stats_json);
};

struct StreamResult {
  StatsSnapshot stats;
  bool interrupted = false;  // a stop request ended the stream before its source did
  bool abandoned = false;    // ... and queued frames were dropped
  std::string source;        // the source's description
  std::string output;        // the writer's description
};

// Runs the stream to its end. `stop_requests` (may be null; e.g. counted by a
// SIGINT handler): 1 stops reading and drains the frames already taken, 2
// also drops the queued ones; either way every frame taken is written or
// counted, and the output file is complete. `print` receives the statistics
// lines and messages (skipped frames, failed workers). Throws what stopped
// the pool (see WorkerPool::finish), after closing the output.
StreamResult run_stream(const StreamOptions& options, const std::atomic<int>* stop_requests,
                        const std::function<void(const std::string&)>& print);

struct PredictFilesResult {
  int64_t written = 0;
  int64_t skipped = 0;  // undecodable files left out (ModelProcessorOptions::skip_bad_files)
};

// `gpulab predict` over image files: the same pool (every worker device;
// memory bounded by the queue and the batches, not the number of files),
// files decoded by the workers, `max_batch` of them per forward pass. Each
// file's record (OutputWriter::write) goes to `on_record` in input order;
// skipped files to `on_skipped`. Throws what stopped the pool.
PredictFilesResult predict_files(
    const std::vector<std::string>& files, const ModelProcessorOptions& model, int64_t max_batch,
    OutputWriter& writer, const std::function<void(nlohmann::json&&)>& on_record,
    const std::function<void(const std::string& file, const std::string& why)>& on_skipped);

}  // namespace gpulab::infer
