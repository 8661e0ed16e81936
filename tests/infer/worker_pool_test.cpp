// The worker pool with fake processors: input order kept whatever the
// workers' speed, bounded queues under each policy, errors named by frame,
// failed workers left out, dynamic batching of equal sizes.
#include "gpulab/infer/worker_pool.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "gpulab/core/error.h"
#include "gpulab/infer/stream_stats.h"

namespace gpulab::infer {
namespace {

Frame wp_frame(int64_t index, int64_t side = 2) {
  Frame f;
  f.index = index;
  f.name = "frame" + std::to_string(index);
  f.image = torch::full({side, side, 3}, static_cast<int>(index % 200), torch::kUInt8);
  f.read_at = StreamClock::now();
  return f;
}

// Output = 2 x pixel + 1; sleeps a random 0-4 ms per frame, so that workers
// finish out of order; throws on `bad_index`; records batch sizes.
class WpFakeProcessor : public FrameProcessor {
 public:
  WpFakeProcessor(int worker, int64_t bad_index, std::vector<size_t>* batches = nullptr,
                  std::mutex* batches_mutex = nullptr)
      : rng_(worker * 7919 + 1), bad_index_(bad_index), batches_(batches), mutex_(batches_mutex) {}
  std::vector<FrameOutput> process(std::vector<Frame>& frames) override {
    if (batches_) {
      std::lock_guard<std::mutex> lock(*mutex_);
      batches_->push_back(frames.size());
    }
    std::vector<FrameOutput> out;
    for (const Frame& f : frames) {
      if (f.index == bad_index_) throw Error(ErrorKind::kCorruptData, "bad pixels");
      std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 4000));
      out.push_back({f.image.permute({2, 0, 1}), f.image.to(torch::kFloat32) * 2 + 1, ""});
    }
    return out;
  }

 private:
  std::mt19937 rng_;
  int64_t bad_index_;
  std::vector<size_t>* batches_;
  std::mutex* mutex_;
};

ProcessorFactory wp_fake(int64_t bad_index = -1) {
  return [bad_index](int worker) { return std::make_unique<WpFakeProcessor>(worker, bad_index); };
}

// Blocks in process() until released; tells when it has started.
struct WpGate {
  std::mutex mutex;
  std::condition_variable changed;
  bool started = false, released = false;
  void wait_started() {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return started; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      released = true;
    }
    changed.notify_all();
  }
};

class WpGatedProcessor : public FrameProcessor {
 public:
  WpGatedProcessor(WpGate& gate, std::vector<size_t>& batches) : gate_(gate), batches_(batches) {}
  std::vector<FrameOutput> process(std::vector<Frame>& frames) override {
    std::unique_lock<std::mutex> lock(gate_.mutex);
    batches_.push_back(frames.size());
    gate_.started = true;
    gate_.changed.notify_all();
    gate_.changed.wait(lock, [&] { return gate_.released; });
    std::vector<FrameOutput> out;
    for (const Frame& f : frames) out.push_back({f.image, f.image.to(torch::kFloat32), ""});
    return out;
  }

 private:
  WpGate& gate_;
  std::vector<size_t>& batches_;
};

struct WpCollected {
  std::vector<int64_t> order;
  std::vector<at::Tensor> outputs;
  std::vector<int> workers;
};

ResultSink wp_collect(WpCollected& c) {
  return [&c](PoolResult&& r) {
    c.order.push_back(r.frame.index);
    c.outputs.push_back(r.output.output);
    c.workers.push_back(r.worker);
  };
}

TEST(WorkerPoolTest, OrderedOutputEqualsASequentialRunWithOneTwoAndThreeWorkers) {
  const int64_t n = 60;
  for (int workers : {1, 2, 3}) {
    WpCollected c;
    WorkerPool pool(workers, wp_fake(), wp_collect(c), PoolOptions().queue_size(4));
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(pool.submit(wp_frame(i)));
    pool.finish();
    ASSERT_EQ(c.order.size(), static_cast<size_t>(n)) << workers << " workers";
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(c.order[i], i) << workers << " workers";
      EXPECT_TRUE(torch::equal(c.outputs[i], wp_frame(i).image.to(torch::kFloat32) * 2 + 1));
    }
    if (workers > 1) {
      // Every worker took frames: the order was restored, not inherited.
      for (int w = 0; w < workers; ++w) {
        EXPECT_GT(std::count(c.workers.begin(), c.workers.end(), w), 0) << "worker " << w;
      }
    }
  }
}

TEST(WorkerPoolTest, UnorderedOutputComesAsWorkersFinish) {
  // Frame 0 is slow; the other worker finishes the rest first.
  class Slow0 : public FrameProcessor {
   public:
    std::vector<FrameOutput> process(std::vector<Frame>& frames) override {
      if (frames[0].index == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return {{frames[0].image, frames[0].image.to(torch::kFloat32), ""}};
    }
  };
  WpCollected c;
  WorkerPool pool(
      2, [](int) { return std::make_unique<Slow0>(); }, wp_collect(c),
      PoolOptions().ordered(false));
  for (int64_t i = 0; i < 6; ++i) pool.submit(wp_frame(i));
  pool.finish();
  ASSERT_EQ(c.order.size(), 6u);
  EXPECT_NE(c.order.front(), 0);
  EXPECT_EQ(c.order.back(), 0);
}

TEST(WorkerPoolTest, DropOldestKeepsTheQueueAtItsBoundAndCountsTheDrops) {
  WpGate gate;
  std::vector<size_t> batches;
  WpCollected c;
  StreamStats stats({"cpu"});
  WorkerPool pool(
      1, [&](int) { return std::make_unique<WpGatedProcessor>(gate, batches); }, wp_collect(c),
      PoolOptions().queue_size(4).when_full(FullPolicy::kDropOldest), &stats);
  pool.submit(wp_frame(0));
  gate.wait_started();  // the worker holds frame 0
  for (int64_t i = 1; i < 20; ++i) {
    EXPECT_TRUE(pool.submit(wp_frame(i)));
    EXPECT_LE(pool.queue_depth(), 4);
  }
  EXPECT_EQ(pool.frames_dropped(), 15);
  gate.release();
  pool.finish();
  EXPECT_EQ(c.order, (std::vector<int64_t>{0, 16, 17, 18, 19}));
  const StatsSnapshot s = stats.snapshot();
  EXPECT_EQ(s.frames_dropped, 15);
  EXPECT_EQ(s.frames_written, 5);
}

TEST(WorkerPoolTest, DropNewestRefusesFramesAtTheBound) {
  WpGate gate;
  std::vector<size_t> batches;
  WpCollected c;
  WorkerPool pool(
      1, [&](int) { return std::make_unique<WpGatedProcessor>(gate, batches); }, wp_collect(c),
      PoolOptions().queue_size(3).when_full(FullPolicy::kDropNewest));
  pool.submit(wp_frame(0));
  gate.wait_started();
  int refused = 0;
  for (int64_t i = 1; i < 10; ++i) refused += pool.submit(wp_frame(i)) ? 0 : 1;
  EXPECT_EQ(refused, 6);
  gate.release();
  pool.finish();
  EXPECT_EQ(c.order, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(pool.frames_dropped(), 6);
}

TEST(WorkerPoolTest, BlockLosesNoFrameFromAFastSource) {
  WpCollected c;
  StreamStats stats({"cpu", "cpu"});
  WorkerPool pool(2, wp_fake(), wp_collect(c), PoolOptions().queue_size(2), &stats);
  for (int64_t i = 0; i < 40; ++i) {
    ASSERT_TRUE(pool.submit(wp_frame(i)));
    EXPECT_LE(pool.queue_depth(), 2);
  }
  pool.finish();
  EXPECT_EQ(c.order.size(), 40u);
  EXPECT_EQ(pool.frames_dropped(), 0);
  const StatsSnapshot s = stats.snapshot();
  EXPECT_EQ(s.frames_dropped, 0);
  EXPECT_LE(s.max_queue_depth, 2);
  EXPECT_EQ(s.workers.size(), 2u);
  EXPECT_EQ(s.workers[0].frames + s.workers[1].frames, 40);
}

TEST(WorkerPoolTest, AFailingFrameStopsThePoolNamingTheFrame) {
  WpCollected c;
  WorkerPool pool(2, wp_fake(/*bad_index=*/7), wp_collect(c), PoolOptions().queue_size(2));
  for (int64_t i = 0; i < 30 && !pool.stopped(); ++i) pool.submit(wp_frame(i));
  try {
    pool.finish();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("frame 7 ('frame7')"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad pixels"), std::string::npos) << e.what();
  }
  // What was written before the failure is in order and stops before it.
  for (size_t i = 0; i < c.order.size(); ++i) EXPECT_EQ(c.order[i], static_cast<int64_t>(i));
  EXPECT_LE(c.order.size(), 7u);
}

TEST(WorkerPoolTest, SkipLeavesTheFailingFrameOutReportsItAndGoesOn) {
  WpCollected c;
  std::vector<std::string> reported;
  std::mutex reported_mutex;
  PoolEvents events;
  events.frame_failed = [&](const Frame& f, const std::string& why) {
    std::lock_guard<std::mutex> lock(reported_mutex);
    reported.push_back(f.name + ": " + why);
  };
  WorkerPool pool(2, wp_fake(/*bad_index=*/3), wp_collect(c),
                  PoolOptions().on_error(ErrorPolicy::kSkip), nullptr, events);
  for (int64_t i = 0; i < 10; ++i) pool.submit(wp_frame(i));
  pool.finish();
  EXPECT_EQ(c.order, (std::vector<int64_t>{0, 1, 2, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(pool.frames_failed(), 1);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("frame3: worker"), std::string::npos) << reported[0];
}

TEST(WorkerPoolTest, AWorkerThatCannotStartIsReportedAndTheOthersGoOn) {
  WpCollected c;
  std::vector<std::string> failures;
  PoolEvents events;
  events.worker_failed = [&](int w, const std::string& why) {
    failures.push_back(std::to_string(w) + ": " + why);
  };
  ProcessorFactory factory = [](int worker) -> std::unique_ptr<FrameProcessor> {
    if (worker == 1) throw Error(ErrorKind::kUnavailable, "CUDA error: out of memory");
    return std::make_unique<WpFakeProcessor>(worker, -1);
  };
  WorkerPool pool(2, factory, wp_collect(c), PoolOptions(), nullptr, events);
  for (int64_t i = 0; i < 8; ++i) pool.submit(wp_frame(i));
  pool.finish();
  EXPECT_EQ(c.order.size(), 8u);
  for (int w : c.workers) EXPECT_EQ(w, 0);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0], "1: CUDA error: out of memory");
}

TEST(WorkerPoolTest, NoWorkerStartingIsAnErrorNotAHang) {
  WpCollected c;
  ProcessorFactory factory = [](int) -> std::unique_ptr<FrameProcessor> {
    throw Error(ErrorKind::kNotFound, "model 'x' does not exist");
  };
  WorkerPool pool(2, factory, wp_collect(c), PoolOptions().queue_size(1));
  for (int64_t i = 0; i < 5; ++i) pool.submit(wp_frame(i));  // must not block forever
  try {
    pool.finish();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("no worker could start"), std::string::npos);
  }
  EXPECT_TRUE(c.order.empty());
}

TEST(WorkerPoolTest, QueuedFramesOfOneSizeRunAsOneBatchUpToMaxBatch) {
  WpGate gate;
  std::vector<size_t> batches;
  WpCollected c;
  WorkerPool pool(
      1, [&](int) { return std::make_unique<WpGatedProcessor>(gate, batches); }, wp_collect(c),
      PoolOptions().queue_size(16).max_batch(4));
  pool.submit(wp_frame(0));
  gate.wait_started();
  for (int64_t i = 1; i <= 6; ++i) pool.submit(wp_frame(i));
  pool.submit(wp_frame(7, /*side=*/3));  // another size: a batch of its own
  pool.submit(wp_frame(8));
  gate.release();
  pool.finish();
  EXPECT_EQ(batches, (std::vector<size_t>{1, 4, 2, 1, 1}));
  EXPECT_EQ(c.order, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(WorkerPoolTest, AFailingWriterStopsThePoolNamingTheFrame) {
  ResultSink sink = [](PoolResult&& r) {
    if (r.frame.index == 2) throw Error(ErrorKind::kIo, "disk full");
  };
  WorkerPool pool(2, wp_fake(), sink, PoolOptions().queue_size(2));
  for (int64_t i = 0; i < 20 && !pool.stopped(); ++i) pool.submit(wp_frame(i));
  try {
    pool.finish();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("frame 2"), std::string::npos) << e.what();
  }
}

TEST(WorkerPoolTest, AbandonDropsTheQueuedFramesAndWritesTheOnesInFlight) {
  WpGate gate;
  std::vector<size_t> batches;
  WpCollected c;
  WorkerPool pool(
      1, [&](int) { return std::make_unique<WpGatedProcessor>(gate, batches); }, wp_collect(c),
      PoolOptions().queue_size(8));
  pool.submit(wp_frame(0));
  gate.wait_started();
  for (int64_t i = 1; i < 6; ++i) pool.submit(wp_frame(i));
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    gate.release();
  });
  pool.abandon();
  releaser.join();
  EXPECT_EQ(c.order, (std::vector<int64_t>{0}));
  EXPECT_EQ(pool.frames_dropped(), 5);
}

}  // namespace
}  // namespace gpulab::infer
