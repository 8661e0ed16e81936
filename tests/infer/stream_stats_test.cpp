// Stream statistics with explicit time points: rates, latency percentiles in
// bounded memory, worker shares, the line, the summary, the JSON, and the
// periodic reporter.
#include "gpulab/infer/stream_stats.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>

#include "gpulab/core/error.h"

namespace gpulab::infer {
namespace {

using std::chrono::milliseconds;

StreamClock::time_point ss_at(double seconds) {
  return StreamClock::time_point{} + std::chrono::hours(1) +
         std::chrono::round<StreamClock::duration>(std::chrono::duration<double>(seconds));
}

// Reads a frame at `read` and writes it at `written` (seconds after ss_at(0)).
void ss_pass(StreamStats& stats, double read, double written) {
  stats.frame_read();
  stats.frame_written(ss_at(read), ss_at(written));
}

struct SsLines {
  std::mutex mu;
  std::vector<std::string> lines;
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return lines.size();
  }
};

}  // namespace

TEST(LatencyHistogramTest, PercentilesOf1To1000MsAreWithinOnePercent) {
  LatencyHistogram h;
  for (int ms = 1; ms <= 1000; ++ms) h.add(ms / 1000.0);
  EXPECT_EQ(h.count(), 1000);
  EXPECT_NEAR(h.mean(), 0.5005, 1e-12);
  EXPECT_DOUBLE_EQ(h.min(), 0.001);
  EXPECT_DOUBLE_EQ(h.max(), 1.0);
  // Nearest rank: p50 of 1..1000 is the 500th value, p95 the 950th, p99 the 990th.
  EXPECT_NEAR(h.percentile(50), 0.500, 0.500 * 0.01);
  EXPECT_NEAR(h.percentile(95), 0.950, 0.950 * 0.01);
  EXPECT_NEAR(h.percentile(99), 0.990, 0.990 * 0.01);
  EXPECT_NEAR(h.percentile(10), 0.100, 0.100 * 0.01);
  EXPECT_NEAR(h.percentile(0.1), 0.001, 0.001 * 0.01);
  EXPECT_DOUBLE_EQ(h.percentile(0), 0.001);
  EXPECT_DOUBLE_EQ(h.percentile(100), 1.0);
}

TEST(LatencyHistogramTest, MemoryStaysBoundedAfterAMillionValues) {
  LatencyHistogram h;
  const size_t buckets = h.bucket_count();
  EXPECT_GT(buckets, 2000u);  // 1% buckets over 1 µs .. 1 h
  EXPECT_LT(buckets, 2500u);
  // Values from 0.5 µs to about 2 hours: every bucket, the under- and overflow included.
  for (int i = 0; i < 1000000; ++i) h.add(5e-7 * std::pow(1.0000236, i));
  EXPECT_EQ(h.count(), 1000000);
  EXPECT_EQ(h.bucket_count(), buckets);
  EXPECT_GT(h.max(), 3600.0);
}

TEST(LatencyHistogramTest, AnEmptyHistogramAnswersNaN) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_TRUE(std::isnan(h.mean()));
  EXPECT_TRUE(std::isnan(h.min()));
  EXPECT_TRUE(std::isnan(h.max()));
  EXPECT_TRUE(std::isnan(h.percentile(50)));
}

TEST(LatencyHistogramTest, OneValueIsEveryPercentileExactly) {
  LatencyHistogram h;
  h.add(0.0421);
  EXPECT_DOUBLE_EQ(h.percentile(1), 0.0421);  // clamped to [min, max]
  EXPECT_DOUBLE_EQ(h.percentile(50), 0.0421);
  EXPECT_DOUBLE_EQ(h.percentile(99), 0.0421);
}

TEST(LatencyHistogramTest, ValuesOutsideTheBucketsKeepExactExtremes) {
  LatencyHistogram h;
  h.add(-1);  // counts as 0
  h.add(0);
  h.add(7200);          // above 1 hour
  h.add(std::nan(""));  // ignored
  EXPECT_EQ(h.count(), 3);
  EXPECT_DOUBLE_EQ(h.min(), 0);
  EXPECT_DOUBLE_EQ(h.max(), 7200);
  EXPECT_DOUBLE_EQ(h.percentile(50), 0);
  EXPECT_DOUBLE_EQ(h.percentile(99), 7200);
  EXPECT_DOUBLE_EQ(h.mean(), 2400);
}

TEST(LatencyHistogramTest, MergeEqualsAddingBoth) {
  LatencyHistogram a, b, all;
  for (int ms = 1; ms <= 1000; ++ms) {
    (ms % 3 == 0 ? a : b).add(ms / 1000.0);
    all.add(ms / 1000.0);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  EXPECT_DOUBLE_EQ(a.min(), all.min());
  EXPECT_DOUBLE_EQ(a.max(), all.max());
  for (double p : {1.0, 50.0, 95.0, 99.0}) EXPECT_DOUBLE_EQ(a.percentile(p), all.percentile(p));
  LatencyHistogram empty;
  empty.merge(all);
  EXPECT_DOUBLE_EQ(empty.min(), 0.001);
  EXPECT_DOUBLE_EQ(empty.percentile(50), all.percentile(50));
}

TEST(LatencyHistogramTest, ClearEmptiesIt) {
  LatencyHistogram h;
  h.add(1);
  h.clear();
  EXPECT_EQ(h.count(), 0);
  EXPECT_TRUE(std::isnan(h.percentile(50)));
  h.add(0.002);
  EXPECT_DOUBLE_EQ(h.max(), 0.002);
}

TEST(StreamStatsTest, RatesComeFromTheGivenTimePoints) {
  StreamStats stats({"cpu"}, ss_at(0));
  for (int i = 0; i < 30; ++i) ss_pass(stats, i / 30.0, i / 30.0 + 0.04);
  stats.frame_read();  // read, not yet written
  const StatsSnapshot s = stats.snapshot(ss_at(1.0));
  EXPECT_DOUBLE_EQ(s.elapsed_seconds, 1.0);
  EXPECT_EQ(s.frames_read, 31);
  EXPECT_EQ(s.frames_written, 30);
  EXPECT_NEAR(s.input_fps, 31.0, 1e-9);
  EXPECT_NEAR(s.output_fps, 30.0, 1e-9);
  // Before any advancing snapshot, the interval is the whole run.
  EXPECT_NEAR(s.recent_output_fps, 30.0, 1e-9);
  EXPECT_DOUBLE_EQ(s.interval_seconds, 1.0);
}

TEST(StreamStatsTest, ASnapshotAtTheStartHasZeroRates) {
  StreamStats stats({"cpu"}, ss_at(0));
  stats.frame_read();
  const StatsSnapshot s = stats.snapshot(ss_at(0));
  EXPECT_EQ(s.input_fps, 0);
  EXPECT_EQ(s.recent_input_fps, 0);
}

TEST(StreamStatsTest, RecentRatesCoverTheIntervalSinceTheLastAdvance) {
  StreamStats stats({"cpu"}, ss_at(0));
  for (int i = 0; i < 30; ++i) ss_pass(stats, i / 30.0, i / 30.0 + 0.01);
  StatsSnapshot s = stats.snapshot(ss_at(1.0), /*advance_interval=*/true);
  EXPECT_NEAR(s.recent_output_fps, 30.0, 1e-9);
  for (int i = 0; i < 5; ++i) ss_pass(stats, 1.0 + i / 10.0, 1.0 + i / 10.0 + 0.01);
  // A look in between does not start a new interval.
  s = stats.snapshot(ss_at(1.5));
  EXPECT_NEAR(s.recent_output_fps, 10.0, 1e-9);  // 5 frames in 0.5 s
  for (int i = 5; i < 10; ++i) ss_pass(stats, 1.0 + i / 10.0, 1.0 + i / 10.0 + 0.01);
  stats.frame_read();
  s = stats.snapshot(ss_at(2.0), true);
  EXPECT_DOUBLE_EQ(s.interval_seconds, 1.0);
  EXPECT_NEAR(s.recent_output_fps, 10.0, 1e-9);
  EXPECT_NEAR(s.recent_input_fps, 11.0, 1e-9);
  EXPECT_NEAR(s.output_fps, 20.0, 1e-9);  // 40 frames in 2 s
  EXPECT_NEAR(s.input_fps, 20.5, 1e-9);
  // Nothing since: zero recent rates, no recent latency, the run's latency kept.
  s = stats.snapshot(ss_at(3.0), true);
  EXPECT_EQ(s.recent_output_fps, 0);
  EXPECT_TRUE(std::isnan(s.recent_latency_p50_ms));
  EXPECT_NEAR(s.latency_p50_ms, 10.0, 0.1);
}

TEST(StreamStatsTest, LatencyIsReadToWriteOverTheWholeRun) {
  StreamStats stats({"cpu"}, ss_at(0));
  // 100 frames with latencies 10, 20, ..., 1000 ms.
  for (int i = 1; i <= 100; ++i) ss_pass(stats, i, i + i / 100.0);
  const StatsSnapshot s = stats.snapshot(ss_at(200));
  EXPECT_NEAR(s.latency_p50_ms, 500, 5);
  EXPECT_NEAR(s.latency_p95_ms, 950, 9.5);
  EXPECT_NEAR(s.latency_p99_ms, 990, 9.9);
  EXPECT_NEAR(s.latency_mean_ms, 505, 1e-4);
  EXPECT_NEAR(s.latency_max_ms, 1000, 1e-4);
  EXPECT_NEAR(s.recent_latency_p50_ms, 500, 5);
}

TEST(StreamStatsTest, AFrameWithoutReadTimeCountsButHasNoLatency) {
  StreamStats stats({"cpu"}, ss_at(0));
  stats.frame_written(StreamClock::time_point{}, ss_at(1));
  const StatsSnapshot s = stats.snapshot(ss_at(1));
  EXPECT_EQ(s.frames_written, 1);
  EXPECT_TRUE(std::isnan(s.latency_p50_ms));
}

TEST(StreamStatsTest, SharesAndPredictionTimesComeFromBatches) {
  StreamStats stats({"cuda:0", "cuda:1"}, ss_at(0));
  for (int i = 0; i < 3; ++i) stats.batch_done(0, 10, 0.3);  // 30 frames in 0.9 s
  stats.batch_done(1, 10, 0.2);                              // 10 frames in 0.2 s
  const StatsSnapshot s = stats.snapshot(ss_at(1));
  ASSERT_EQ(s.workers.size(), 2u);
  const WorkerStatsSnapshot& w0 = s.workers[0];
  const WorkerStatsSnapshot& w1 = s.workers[1];
  EXPECT_EQ(w0.worker, 0);
  EXPECT_EQ(w0.device, "cuda:0");
  EXPECT_EQ(w0.frames, 30);
  EXPECT_EQ(w0.batches, 3);
  EXPECT_NEAR(w0.busy_seconds, 0.9, 1e-12);
  EXPECT_NEAR(w0.share, 0.75, 1e-12);
  EXPECT_NEAR(w0.mean_predict_ms_per_frame, 30.0, 1e-9);
  EXPECT_NEAR(w0.mean_predict_ms_per_batch, 300.0, 1e-9);
  EXPECT_EQ(w1.worker, 1);
  EXPECT_EQ(w1.device, "cuda:1");
  EXPECT_NEAR(w1.share, 0.25, 1e-12);
  EXPECT_NEAR(w1.mean_predict_ms_per_frame, 20.0, 1e-9);
  EXPECT_NEAR(w1.mean_predict_ms_per_batch, 200.0, 1e-9);
  EXPECT_FALSE(w0.failed);
}

TEST(StreamStatsTest, AWorkerWithoutFramesHasNoShareAndNoTimes) {
  StreamStats stats({"cpu", "cpu"}, ss_at(0));
  StatsSnapshot s = stats.snapshot(ss_at(1));
  EXPECT_EQ(s.workers[0].share, 0);
  EXPECT_TRUE(std::isnan(s.workers[0].mean_predict_ms_per_frame));
  stats.batch_done(1, 4, 0.1);
  s = stats.snapshot(ss_at(1));
  EXPECT_EQ(s.workers[0].share, 0);
  EXPECT_EQ(s.workers[1].share, 1);
  EXPECT_TRUE(std::isnan(s.workers[0].mean_predict_ms_per_batch));
}

TEST(StreamStatsTest, DropsFailuresAndFailedWorkersAreCounted) {
  StreamStats stats({"cuda:0", "cuda:1"}, ss_at(0));
  stats.frame_dropped();
  stats.frame_dropped(4);
  stats.frame_failed();
  stats.frame_failed(2);
  stats.worker_failed(1, "out of memory");
  const StatsSnapshot s = stats.snapshot(ss_at(1));
  EXPECT_EQ(s.frames_dropped, 5);
  EXPECT_EQ(s.frames_failed, 3);
  EXPECT_FALSE(s.workers[0].failed);
  EXPECT_TRUE(s.workers[1].failed);
  EXPECT_EQ(s.workers[1].failure, "out of memory");
}

TEST(StreamStatsTest, QueueDepthKeepsTheLastAndTheLargest) {
  StreamStats stats({"cpu"}, ss_at(0));
  StatsSnapshot s = stats.snapshot(ss_at(0));
  EXPECT_EQ(s.queue_capacity, 0);
  stats.queue_depth(3, 8);
  stats.queue_depth(7, 8);
  stats.queue_depth(2, 8);
  s = stats.snapshot(ss_at(1));
  EXPECT_EQ(s.queue_depth, 2);
  EXPECT_EQ(s.queue_capacity, 8);
  EXPECT_EQ(s.max_queue_depth, 7);
}

TEST(StreamStatsTest, AnUnknownWorkerIsAnError) {
  StreamStats stats({"cpu"}, ss_at(0));
  EXPECT_THROW(stats.batch_done(1, 1, 0.1), Error);
  EXPECT_THROW(stats.batch_done(-1, 1, 0.1), Error);
  EXPECT_THROW(stats.worker_failed(2, "x"), Error);
}

TEST(StreamStatsTest, EventsFromManyThreadsAddUp) {
  StreamStats stats({"cpu", "cpu", "cpu", "cpu"}, ss_at(0));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&stats, t] {
      for (int i = 0; i < 1000; ++i) {
        stats.frame_read();
        stats.batch_done(t, 1, 0.001);
        stats.frame_written(ss_at(0), ss_at(0.01));
        stats.queue_depth(i % 5, 5);
        if (i % 100 == 0) stats.snapshot(ss_at(1), true);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const StatsSnapshot s = stats.snapshot(ss_at(10));
  EXPECT_EQ(s.frames_read, 4000);
  EXPECT_EQ(s.frames_written, 4000);
  for (const auto& w : s.workers) EXPECT_EQ(w.frames, 1000);
  EXPECT_NEAR(s.latency_p99_ms, 10, 0.1);
  EXPECT_EQ(s.max_queue_depth, 4);
}

TEST(StreamStatsTest, JsonHasEveryFieldAndNullForNaN) {
  StreamStats stats({"cuda:0", "cuda:1"}, ss_at(0));
  stats.frame_read();
  stats.frame_dropped();
  stats.batch_done(0, 3, 0.03);
  stats.worker_failed(1, "no device");
  stats.queue_depth(1, 4);
  const nlohmann::json j = stats_to_json(stats.snapshot(ss_at(2)));
  for (const char* key : {"elapsed_seconds",
                          "frames_read",
                          "frames_written",
                          "frames_dropped",
                          "frames_failed",
                          "input_fps",
                          "output_fps",
                          "interval_seconds",
                          "recent_input_fps",
                          "recent_output_fps",
                          "latency_p50_ms",
                          "latency_p95_ms",
                          "latency_p99_ms",
                          "latency_mean_ms",
                          "latency_max_ms",
                          "recent_latency_p50_ms",
                          "recent_latency_p95_ms",
                          "recent_latency_p99_ms",
                          "queue_depth",
                          "queue_capacity",
                          "max_queue_depth",
                          "workers"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 22u);
  EXPECT_DOUBLE_EQ(j["elapsed_seconds"].get<double>(), 2.0);
  EXPECT_EQ(j["frames_read"], 1);
  EXPECT_EQ(j["frames_dropped"], 1);
  EXPECT_DOUBLE_EQ(j["input_fps"].get<double>(), 0.5);
  EXPECT_EQ(j["queue_capacity"], 4);
  // Nothing written: no latency.
  EXPECT_TRUE(j["latency_p50_ms"].is_null());
  EXPECT_TRUE(j["latency_max_ms"].is_null());
  EXPECT_TRUE(j["recent_latency_p99_ms"].is_null());
  ASSERT_EQ(j["workers"].size(), 2u);
  const nlohmann::json& w0 = j["workers"][0];
  for (const char* key :
       {"worker", "device", "frames", "batches", "busy_seconds", "share",
        "mean_predict_ms_per_frame", "mean_predict_ms_per_batch", "failed", "failure"}) {
    EXPECT_TRUE(w0.contains(key)) << key;
  }
  EXPECT_EQ(w0["device"], "cuda:0");
  EXPECT_EQ(w0["frames"], 3);
  EXPECT_DOUBLE_EQ(w0["share"].get<double>(), 1.0);
  EXPECT_NEAR(w0["mean_predict_ms_per_frame"].get<double>(), 10.0, 1e-9);
  const nlohmann::json& w1 = j["workers"][1];
  EXPECT_TRUE(w1["mean_predict_ms_per_frame"].is_null());
  EXPECT_EQ(w1["failed"], true);
  EXPECT_EQ(w1["failure"], "no device");
  // The dump is valid JSON (a NaN would not be).
  EXPECT_EQ(nlohmann::json::parse(j.dump()), j);
}

TEST(StreamStatsTest, TheLineShowsTheRecentInterval) {
  StatsSnapshot s;
  s.elapsed_seconds = 12.04;
  s.recent_input_fps = 30;
  s.recent_output_fps = 29.94;
  s.recent_latency_p50_ms = 41.2;
  s.recent_latency_p95_ms = 55;
  s.recent_latency_p99_ms = 59.6;
  s.queue_depth = 3;
  s.queue_capacity = 8;
  s.workers.resize(2);
  s.workers[0].share = 0.51;
  s.workers[1].share = 0.49;
  EXPECT_EQ(format_stats_line(s),
            "12.0 s  in 30.0 fps  out 29.9 fps  latency p50 41 ms p95 55 ms p99 60 ms  queue 3/8"
            "  dropped 0  workers 51%/49%");
  s.recent_latency_p50_ms = 4.23;
  s.recent_latency_p95_ms = 0.5;
  s.frames_dropped = 2;
  s.frames_failed = 1;
  s.workers[1].failed = true;
  EXPECT_EQ(format_stats_line(s),
            "12.0 s  in 30.0 fps  out 29.9 fps  latency p50 4.2 ms p95 0.50 ms p99 60 ms"
            "  queue 3/8  dropped 2  failed 1  workers 51%/failed");
}

TEST(StreamStatsTest, TheLineOfAFreshStreamHasNoLatency) {
  StreamStats stats({"cpu"}, ss_at(0));
  const std::string line = format_stats_line(stats.snapshot(ss_at(0.5)));
  EXPECT_EQ(line, "0.5 s  in 0.0 fps  out 0.0 fps  latency -  queue 0  dropped 0  workers 0%");
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(StreamStatsTest, TheSummaryHasCountsLatencyAndAWorkerTable) {
  StreamStats stats({"cuda:0", "cuda:1"}, ss_at(0));
  for (int i = 0; i < 30; ++i) ss_pass(stats, i / 30.0, i / 30.0 + 0.05);
  stats.batch_done(0, 30, 0.6);
  stats.worker_failed(1, "out of memory");
  stats.queue_depth(2, 8);
  const std::string summary = format_stats_summary(stats.snapshot(ss_at(1)));
  EXPECT_NE(summary.find("Frames: 30 read, 30 written, 0 dropped, 0 failed in 1.0 s\n"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("Rate: in 30.0 fps, out 30.0 fps\n"), std::string::npos) << summary;
  EXPECT_NE(summary.find("p50 50 ms"), std::string::npos) << summary;
  EXPECT_NE(summary.find("Queue: at most 2 of 8\n"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| worker | device | frames |"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| cuda:0 |"), std::string::npos) << summary;
  EXPECT_NE(summary.find("100.0%"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| failed: out of memory |"), std::string::npos) << summary;
  EXPECT_EQ(summary.back(), '\n');
}

TEST(StatsReporterTest, PrintsEveryIntervalUntilStopped) {
  StreamStats stats({"cpu"});
  SsLines lines;
  StatsReporter reporter(stats, milliseconds(20), [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(lines.mu);
    lines.lines.push_back(line);
  });
  // At least 2 lines; the deadline is generous for a loaded machine.
  const auto deadline = StreamClock::now() + std::chrono::seconds(10);
  while (lines.size() < 2 && StreamClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  reporter.stop();
  const size_t printed = lines.size();
  EXPECT_GE(printed, 2u);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(lines.size(), printed);  // nothing after stop()
  reporter.stop();                   // idempotent
  std::lock_guard<std::mutex> lock(lines.mu);
  EXPECT_NE(lines.lines[0].find(" fps  out "), std::string::npos) << lines.lines[0];
}

TEST(StatsReporterTest, DestructionStopsIt) {
  StreamStats stats({"cpu"});
  SsLines lines;
  {
    StatsReporter reporter(stats, milliseconds(1), [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(lines.mu);
      lines.lines.push_back(line);
    });
  }
  const size_t printed = lines.size();
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(lines.size(), printed);
}

TEST(StatsReporterTest, AThrowingPrintEndsReportingQuietly) {
  StreamStats stats({"cpu"});
  std::atomic<int> calls{0};
  StatsReporter reporter(stats, milliseconds(1), [&](const std::string&) {
    ++calls;
    throw std::runtime_error("stderr closed");
  });
  const auto deadline = StreamClock::now() + std::chrono::seconds(10);
  while (calls == 0 && StreamClock::now() < deadline) std::this_thread::sleep_for(milliseconds(2));
  std::this_thread::sleep_for(milliseconds(20));
  reporter.stop();
  EXPECT_EQ(calls, 1);
}

TEST(StatsReporterTest, AZeroIntervalIsRefused) {
  StreamStats stats({"cpu"});
  EXPECT_THROW({ StatsReporter r(stats, milliseconds(0), [](const std::string&) {}); }, Error);
}

}  // namespace gpulab::infer
