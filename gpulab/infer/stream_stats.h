// Live statistics of `gpulab stream`: frame rates, read-to-write latency
// percentiles, queue depth, drops and each worker's share, in memory that
// stays bounded however long the stream runs; printed as a line, a summary
// and JSON.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpulab::infer {

// The same alias as in frame.h (which pulls in ATen; this header must not).
using StreamClock = std::chrono::steady_clock;

// A distribution of durations in seconds, in a fixed number of log-spaced
// buckets: 1% wide from kMinSeconds (1 µs) to kMaxSeconds (1 hour), plus one
// bucket below and one above. Memory is bucket_count() counters whatever the
// number of values. count, mean, min and max are exact; a percentile is
// exact to within one bucket's width (1%) between kMinSeconds and
// kMaxSeconds, and clamped to [min, max]. Not thread-safe (StreamStats
// guards its own). Copyable.
class LatencyHistogram {
 public:
  static constexpr double kMinSeconds = 1e-6;
  static constexpr double kMaxSeconds = 3600;
  static constexpr double kGrowth = 1.01;  // upper / lower edge of a bucket

  // Allocates every bucket here; add() never allocates.
  LatencyHistogram();

  // Negative values count as 0; NaN is ignored.
  void add(double seconds);
  // Adds the other histogram's values (same buckets: every histogram has).
  void merge(const LatencyHistogram& other);
  // Back to empty, keeping the buckets' memory.
  void clear();

  int64_t count() const { return count_; }
  // NaN when empty, as are min(), max() and percentile().
  double mean() const;
  double min() const;
  double max() const;
  // p in [0, 100] (clamped): the smallest value with at least p% of the
  // values at or below it (nearest rank); p = 0 is min(), p = 100 is max().
  double percentile(double p) const;
  // Constant: the memory bound, for tests.
  size_t bucket_count() const { return counts_.size(); }

 private:
  std::vector<int64_t> counts_;  // [0] below kMinSeconds, [last] above kMaxSeconds
  int64_t count_ = 0;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
};

// One worker's share of the stream, as of a snapshot.
struct WorkerStatsSnapshot {
  int worker = 0;
  std::string device;  // e.g. "cuda:0", "cpu"
  int64_t frames = 0;  // frames predicted (batch_done)
  int64_t batches = 0;
  double busy_seconds = 0;  // sum of batch_done's prediction times
  double share = 0;         // frames / all workers' frames, in [0, 1]; 0 before any frame
  double mean_predict_ms_per_frame = 0;  // busy_seconds / frames, NaN before any frame
  double mean_predict_ms_per_batch = 0;  // busy_seconds / batches, NaN before any batch
  bool failed = false;
  std::string failure;  // why it failed ("" unless failed)
};

// Everything StreamStats knows at one moment. Rates are in frames per second
// and 0 over an empty time span; latencies are in milliseconds and NaN
// before the first written frame.
struct StatsSnapshot {
  double elapsed_seconds = 0;  // since StreamStats' start
  int64_t frames_read = 0;
  int64_t frames_written = 0;
  int64_t frames_dropped = 0;  // left out by a full queue or a stop request
  int64_t frames_failed = 0;   // taken by a worker, not written (an error)
  // Over the whole run: count / elapsed_seconds.
  double input_fps = 0;
  double output_fps = 0;
  // Over the interval since the last snapshot taken with advance_interval
  // (the start, before the first): what the once-a-second line shows.
  double interval_seconds = 0;
  double recent_input_fps = 0;
  double recent_output_fps = 0;
  // Read -> write, over the whole run.
  double latency_p50_ms = 0;
  double latency_p95_ms = 0;
  double latency_p99_ms = 0;
  double latency_mean_ms = 0;
  double latency_max_ms = 0;
  // Read -> write, over the same interval as the recent rates (NaN when no
  // frame was written in it): a live line that still moves after days.
  double recent_latency_p50_ms = 0;
  double recent_latency_p95_ms = 0;
  double recent_latency_p99_ms = 0;
  // The last depth reported, its capacity (0 before any report) and the
  // largest depth reported.
  int64_t queue_depth = 0;
  int64_t queue_capacity = 0;
  int64_t max_queue_depth = 0;
  std::vector<WorkerStatsSnapshot> workers;  // one per device, in worker order
};

// The stream's counters, fed by the reader thread, the workers and the
// writer thread, read by any thread through snapshot(). Thread-safe: one
// mutex guards every member. Events take the lock for a few additions and
// never allocate (worker_failed copies its message: a one-time event).
// Non-copyable.
class StreamStats {
 public:
  // One worker per device, numbered in this order; `start` is when elapsed
  // time begins.
  explicit StreamStats(std::vector<std::string> worker_devices,
                       StreamClock::time_point start = StreamClock::now());
  StreamStats(const StreamStats&) = delete;
  StreamStats& operator=(const StreamStats&) = delete;

  void frame_read();
  void frame_dropped(int64_t n = 1);
  void frame_failed(int64_t n = 1);
  // A frame's output was written; its latency is written_at - read_at. A
  // read_at of time_point{} (never set by the source) counts the frame but
  // not its latency.
  void frame_written(StreamClock::time_point read_at,
                     StreamClock::time_point written_at = StreamClock::now());
  // `worker` predicted a batch of `frames` frames in `seconds`. Throws
  // Error(kInternal) when `worker` is not in [0, workers).
  void batch_done(int worker, int64_t frames, double seconds);
  // `worker` is out of the pool (e.g. its device could not load the model).
  void worker_failed(int worker, const std::string& why);
  // The pool's queue holds `depth` of `capacity` frames.
  void queue_depth(int64_t depth, int64_t capacity);

  // The counters as of `now`. advance_interval: start a new interval for the
  // recent_* fields at `now` (the periodic line does; a look in between
  // should not).
  StatsSnapshot snapshot(StreamClock::time_point now = StreamClock::now(),
                         bool advance_interval = false);

 private:
  struct Worker {
    std::string device;
    int64_t frames = 0;
    int64_t batches = 0;
    double busy_seconds = 0;
    bool failed = false;
    std::string failure;
  };

  mutable std::mutex mu_;  // guards every member below
  const StreamClock::time_point start_;
  int64_t read_ = 0;
  int64_t written_ = 0;
  int64_t dropped_ = 0;
  int64_t failed_ = 0;
  int64_t queue_depth_ = 0;
  int64_t queue_capacity_ = 0;
  int64_t max_queue_depth_ = 0;
  LatencyHistogram latency_;         // the whole run
  LatencyHistogram recent_latency_;  // since interval_start_
  StreamClock::time_point interval_start_;
  int64_t interval_read_ = 0;     // read_ at interval_start_
  int64_t interval_written_ = 0;  // written_ at interval_start_
  std::vector<Worker> workers_;
};

// One line, no newline, for the periodic report; rates and latencies of the
// recent interval:
// "12.0 s  in 30.0 fps  out 29.9 fps  latency p50 41 ms p95 55 ms p99 60 ms  queue 3/8
//  dropped 0  workers 51%/49%" ("failed N" follows "dropped" when N > 0; a
// failed worker shows "failed" instead of its share; "latency -" when no
// frame was written in the interval).
std::string format_stats_line(const StatsSnapshot& s);

// The end-of-run summary, several lines each ending in '\n': counts, overall
// rates, whole-run latency, queue, and a table of workers (worker, device,
// frames, share, ms per frame, ms per batch, state).
std::string format_stats_summary(const StatsSnapshot& s);

// Every field of the snapshot under its own (snake_case) name, workers as an
// array of objects; NaN is written as null.
nlohmann::json stats_to_json(const StatsSnapshot& s);

// Calls print(format_stats_line(stats.snapshot(now, true))) every `interval`
// on a background thread, until stop() or destruction. `stats` must outlive
// the reporter. If print throws, reporting ends quietly (statistics are not
// worth a crash). Non-copyable; stop() is idempotent and thread-safe.
class StatsReporter {
 public:
  // Throws Error(kInvalidArgument) unless interval > 0.
  StatsReporter(StreamStats& stats, std::chrono::milliseconds interval,
                std::function<void(const std::string&)> print);
  ~StatsReporter();
  StatsReporter(const StatsReporter&) = delete;
  StatsReporter& operator=(const StatsReporter&) = delete;

  // Wakes the thread and waits for it to end; prints nothing more.
  void stop();

 private:
  void run();

  StreamStats& stats_;
  const std::chrono::milliseconds interval_;
  const std::function<void(const std::string&)> print_;
  std::mutex mu_;  // guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::mutex join_mu_;  // serialises stop()'s join
  std::thread thread_;  // started last, in the constructor body
};

}  // namespace gpulab::infer
