// StreamStats: counters under one mutex, latency in log buckets, and their
// line, summary and JSON forms; StatsReporter's timer thread.
#include "gpulab/infer/stream_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gpulab/core/error.h"
#include "gpulab/core/text_table.h"

namespace gpulab::infer {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Log-spaced buckets between kMinSeconds and kMaxSeconds (2211 at 1%).
size_t log_bucket_count() {
  return static_cast<size_t>(
      std::ceil(std::log(LatencyHistogram::kMaxSeconds / LatencyHistogram::kMinSeconds) /
                std::log(LatencyHistogram::kGrowth)));
}

double rate(int64_t frames, double seconds) {
  return seconds > 0 ? static_cast<double>(frames) / seconds : 0.0;
}

double seconds_between(StreamClock::time_point from, StreamClock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Milliseconds with about three significant digits: "0.42", "4.2", "42".
std::string format_ms(double ms) {
  if (std::isnan(ms)) return "-";
  if (ms < 1) return fmt::format("{:.2f}", ms);
  if (ms < 10) return fmt::format("{:.1f}", ms);
  return fmt::format("{:.0f}", ms);
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

// ---- LatencyHistogram ----

LatencyHistogram::LatencyHistogram() : counts_(log_bucket_count() + 2, 0) {}

void LatencyHistogram::add(double seconds) {
  if (std::isnan(seconds)) return;
  seconds = std::max(seconds, 0.0);
  size_t index;
  if (seconds < kMinSeconds) {
    index = 0;
  } else if (seconds >= kMaxSeconds) {
    index = counts_.size() - 1;
  } else {
    const auto i = static_cast<size_t>(std::log(seconds / kMinSeconds) / std::log(kGrowth));
    index = 1 + std::min(i, counts_.size() - 3);  // rounding at the top edge
  }
  ++counts_[index];
  min_ = count_ == 0 ? seconds : std::min(min_, seconds);
  max_ = count_ == 0 ? seconds : std::max(max_, seconds);
  ++count_;
  sum_ += seconds;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = min_ = max_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? kNaN : sum_ / static_cast<double>(count_);
}

double LatencyHistogram::min() const {
  return count_ == 0 ? kNaN : min_;
}

double LatencyHistogram::max() const {
  return count_ == 0 ? kNaN : max_;
}

double LatencyHistogram::percentile(double p) const {
  if (count_ == 0 || std::isnan(p)) return kNaN;
  p = std::clamp(p, 0.0, 100.0);
  if (p == 0) return min_;
  if (p == 100) return max_;
  // Nearest rank; the epsilon keeps 95% of 1000 at rank 950, not 951.
  const auto rank =
      std::clamp(static_cast<int64_t>(std::ceil(p / 100 * static_cast<double>(count_) - 1e-9)),
                 int64_t{1}, count_);
  int64_t seen = 0;
  size_t index = 0;
  for (; index < counts_.size(); ++index) {
    seen += counts_[index];
    if (seen >= rank) break;
  }
  if (index == 0) return min_;
  if (index == counts_.size() - 1) return max_;
  // The bucket's geometric middle: within half a bucket (0.5%) of any value in it.
  const double lower = kMinSeconds * std::pow(kGrowth, static_cast<double>(index - 1));
  return std::clamp(lower * std::sqrt(kGrowth), min_, max_);
}

// ---- StreamStats ----

StreamStats::StreamStats(std::vector<std::string> worker_devices, StreamClock::time_point start)
    : start_(start), interval_start_(start) {
  workers_.reserve(worker_devices.size());
  for (auto& device : worker_devices) {
    Worker w;
    w.device = std::move(device);
    workers_.push_back(std::move(w));
  }
}

void StreamStats::frame_read() {
  std::lock_guard<std::mutex> lock(mu_);
  ++read_;
}

void StreamStats::frame_dropped(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  dropped_ += n;
}

void StreamStats::frame_failed(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  failed_ += n;
}

void StreamStats::frame_written(StreamClock::time_point read_at,
                                StreamClock::time_point written_at) {
  const bool timed = read_at != StreamClock::time_point{};
  const double seconds = seconds_between(read_at, written_at);
  std::lock_guard<std::mutex> lock(mu_);
  ++written_;
  if (timed) {
    latency_.add(seconds);
    recent_latency_.add(seconds);
  }
}

void StreamStats::batch_done(int worker, int64_t frames, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  GPULAB_CHECK(worker >= 0 && static_cast<size_t>(worker) < workers_.size(), ErrorKind::kInternal,
               "StreamStats: batch_done for worker {}, expected 0 to {}", worker,
               static_cast<int64_t>(workers_.size()) - 1);
  Worker& w = workers_[static_cast<size_t>(worker)];
  w.frames += frames;
  w.batches += 1;
  w.busy_seconds += seconds;
}

void StreamStats::worker_failed(int worker, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  GPULAB_CHECK(worker >= 0 && static_cast<size_t>(worker) < workers_.size(), ErrorKind::kInternal,
               "StreamStats: worker_failed for worker {}, expected 0 to {}", worker,
               static_cast<int64_t>(workers_.size()) - 1);
  Worker& w = workers_[static_cast<size_t>(worker)];
  w.failed = true;
  w.failure = why;
}

void StreamStats::queue_depth(int64_t depth, int64_t capacity) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_depth_ = depth;
  queue_capacity_ = capacity;
  max_queue_depth_ = std::max(max_queue_depth_, depth);
}

StatsSnapshot StreamStats::snapshot(StreamClock::time_point now, bool advance_interval) {
  StatsSnapshot s;
  std::lock_guard<std::mutex> lock(mu_);
  s.elapsed_seconds = std::max(0.0, seconds_between(start_, now));
  s.frames_read = read_;
  s.frames_written = written_;
  s.frames_dropped = dropped_;
  s.frames_failed = failed_;
  s.input_fps = rate(read_, s.elapsed_seconds);
  s.output_fps = rate(written_, s.elapsed_seconds);

  s.interval_seconds = std::max(0.0, seconds_between(interval_start_, now));
  s.recent_input_fps = rate(read_ - interval_read_, s.interval_seconds);
  s.recent_output_fps = rate(written_ - interval_written_, s.interval_seconds);

  s.latency_p50_ms = latency_.percentile(50) * 1e3;
  s.latency_p95_ms = latency_.percentile(95) * 1e3;
  s.latency_p99_ms = latency_.percentile(99) * 1e3;
  s.latency_mean_ms = latency_.mean() * 1e3;
  s.latency_max_ms = latency_.max() * 1e3;
  s.recent_latency_p50_ms = recent_latency_.percentile(50) * 1e3;
  s.recent_latency_p95_ms = recent_latency_.percentile(95) * 1e3;
  s.recent_latency_p99_ms = recent_latency_.percentile(99) * 1e3;

  s.queue_depth = queue_depth_;
  s.queue_capacity = queue_capacity_;
  s.max_queue_depth = max_queue_depth_;

  int64_t all_frames = 0;
  for (const Worker& w : workers_) all_frames += w.frames;
  s.workers.reserve(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    const Worker& w = workers_[i];
    WorkerStatsSnapshot ws;
    ws.worker = static_cast<int>(i);
    ws.device = w.device;
    ws.frames = w.frames;
    ws.batches = w.batches;
    ws.busy_seconds = w.busy_seconds;
    ws.share =
        all_frames > 0 ? static_cast<double>(w.frames) / static_cast<double>(all_frames) : 0.0;
    ws.mean_predict_ms_per_frame =
        w.frames > 0 ? w.busy_seconds * 1e3 / static_cast<double>(w.frames) : kNaN;
    ws.mean_predict_ms_per_batch =
        w.batches > 0 ? w.busy_seconds * 1e3 / static_cast<double>(w.batches) : kNaN;
    ws.failed = w.failed;
    ws.failure = w.failure;
    s.workers.push_back(std::move(ws));
  }

  if (advance_interval) {
    interval_start_ = now;
    interval_read_ = read_;
    interval_written_ = written_;
    recent_latency_.clear();
  }
  return s;
}

// ---- Formatting ----

std::string format_stats_line(const StatsSnapshot& s) {
  std::string line = fmt::format("{:.1f} s  in {:.1f} fps  out {:.1f} fps  ", s.elapsed_seconds,
                                 s.recent_input_fps, s.recent_output_fps);
  if (std::isnan(s.recent_latency_p50_ms)) {
    line += "latency -";
  } else {
    line += fmt::format("latency p50 {} ms p95 {} ms p99 {} ms", format_ms(s.recent_latency_p50_ms),
                        format_ms(s.recent_latency_p95_ms), format_ms(s.recent_latency_p99_ms));
  }
  line += s.queue_capacity > 0 ? fmt::format("  queue {}/{}", s.queue_depth, s.queue_capacity)
                               : fmt::format("  queue {}", s.queue_depth);
  line += fmt::format("  dropped {}", s.frames_dropped);
  if (s.frames_failed > 0) line += fmt::format("  failed {}", s.frames_failed);
  if (!s.workers.empty()) {
    line += "  workers ";
    for (size_t i = 0; i < s.workers.size(); ++i) {
      if (i > 0) line += "/";
      const WorkerStatsSnapshot& w = s.workers[i];
      line += w.failed ? std::string("failed") : fmt::format("{:.0f}%", w.share * 100);
    }
  }
  return line;
}

std::string format_stats_summary(const StatsSnapshot& s) {
  std::string out =
      fmt::format("Frames: {} read, {} written, {} dropped, {} failed in {:.1f} s\n", s.frames_read,
                  s.frames_written, s.frames_dropped, s.frames_failed, s.elapsed_seconds);
  out += fmt::format("Rate: in {:.1f} fps, out {:.1f} fps\n", s.input_fps, s.output_fps);
  if (std::isnan(s.latency_p50_ms)) {
    out += "Latency (read to write): no frame written\n";
  } else {
    out += fmt::format(
        "Latency (read to write): p50 {} ms, p95 {} ms, p99 {} ms, mean {} ms, max {} ms\n",
        format_ms(s.latency_p50_ms), format_ms(s.latency_p95_ms), format_ms(s.latency_p99_ms),
        format_ms(s.latency_mean_ms), format_ms(s.latency_max_ms));
  }
  out += s.queue_capacity > 0
             ? fmt::format("Queue: at most {} of {}\n", s.max_queue_depth, s.queue_capacity)
             : fmt::format("Queue: at most {}\n", s.max_queue_depth);
  if (s.workers.empty()) return out;
  core::TextTable table(
      {"worker", "device", "frames", "share", "ms per frame", "ms per batch", "state"});
  for (const WorkerStatsSnapshot& w : s.workers) {
    table.add_row({std::to_string(w.worker), w.device, std::to_string(w.frames),
                   fmt::format("{:.1f}%", w.share * 100), format_ms(w.mean_predict_ms_per_frame),
                   format_ms(w.mean_predict_ms_per_batch),
                   w.failed ? "failed: " + w.failure : std::string("ok")});
  }
  return out + table.render();
}

nlohmann::json stats_to_json(const StatsSnapshot& s) {
  nlohmann::json workers = nlohmann::json::array();
  for (const WorkerStatsSnapshot& w : s.workers) {
    workers.push_back({
        {"worker", w.worker},
        {"device", w.device},
        {"frames", w.frames},
        {"batches", w.batches},
        {"busy_seconds", number_or_null(w.busy_seconds)},
        {"share", number_or_null(w.share)},
        {"mean_predict_ms_per_frame", number_or_null(w.mean_predict_ms_per_frame)},
        {"mean_predict_ms_per_batch", number_or_null(w.mean_predict_ms_per_batch)},
        {"failed", w.failed},
        {"failure", w.failure},
    });
  }
  return {
      {"elapsed_seconds", number_or_null(s.elapsed_seconds)},
      {"frames_read", s.frames_read},
      {"frames_written", s.frames_written},
      {"frames_dropped", s.frames_dropped},
      {"frames_failed", s.frames_failed},
      {"input_fps", number_or_null(s.input_fps)},
      {"output_fps", number_or_null(s.output_fps)},
      {"interval_seconds", number_or_null(s.interval_seconds)},
      {"recent_input_fps", number_or_null(s.recent_input_fps)},
      {"recent_output_fps", number_or_null(s.recent_output_fps)},
      {"latency_p50_ms", number_or_null(s.latency_p50_ms)},
      {"latency_p95_ms", number_or_null(s.latency_p95_ms)},
      {"latency_p99_ms", number_or_null(s.latency_p99_ms)},
      {"latency_mean_ms", number_or_null(s.latency_mean_ms)},
      {"latency_max_ms", number_or_null(s.latency_max_ms)},
      {"recent_latency_p50_ms", number_or_null(s.recent_latency_p50_ms)},
      {"recent_latency_p95_ms", number_or_null(s.recent_latency_p95_ms)},
      {"recent_latency_p99_ms", number_or_null(s.recent_latency_p99_ms)},
      {"queue_depth", s.queue_depth},
      {"queue_capacity", s.queue_capacity},
      {"max_queue_depth", s.max_queue_depth},
      {"workers", std::move(workers)},
  };
}

// ---- StatsReporter ----

StatsReporter::StatsReporter(StreamStats& stats, std::chrono::milliseconds interval,
                             std::function<void(const std::string&)> print)
    : stats_(stats), interval_(interval), print_(std::move(print)) {
  GPULAB_CHECK(interval.count() > 0, ErrorKind::kInvalidArgument,
               "statistics interval: expected more than 0 ms, got {} ms", interval.count());
  thread_ = std::thread([this] { run(); });
}

StatsReporter::~StatsReporter() {
  stop();
}

void StatsReporter::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  std::lock_guard<std::mutex> lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void StatsReporter::run() {
  // Due times advance by whole intervals, so the lines keep their cadence
  // however long printing takes.
  auto due = StreamClock::now() + interval_;
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_until(lock, due, [this] { return stopping_; })) {
    lock.unlock();
    try {
      print_(format_stats_line(stats_.snapshot(StreamClock::now(), true)));
    } catch (...) {
      return;  // a statistics line is not worth a crash; the summary still comes
    }
    due += interval_;
    const auto now = StreamClock::now();
    if (due < now) due = now + interval_;  // fell behind (a slow print): skip, don't burst
    lock.lock();
  }
}

}  // namespace gpulab::infer
