// The pool's threads: workers take batches from the queue and hand results
// to the reorder buffer; the writer hands them, in order, to the sink.
#include "gpulab/infer/worker_pool.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <utility>

#include <ATen/Parallel.h>

#include "gpulab/core/error.h"
#include "gpulab/infer/stream_stats.h"

namespace gpulab::infer {
namespace {

size_t reorder_capacity(const PoolOptions& o, int workers) {
  if (o.reorder_capacity() > 0) return static_cast<size_t>(o.reorder_capacity());
  return static_cast<size_t>(o.queue_size() + workers * std::max<int64_t>(1, o.max_batch()));
}

std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

std::string frame_names(const std::vector<Frame>& batch) {
  if (batch.size() == 1) return fmt::format("frame {} ('{}')", batch[0].index, batch[0].name);
  return fmt::format("a batch of frames {}-{} ('{}' to '{}')", batch.front().index,
                     batch.back().index, batch.front().name, batch.back().name);
}

}  // namespace

FullPolicy parse_full_policy(const std::string& name) {
  if (name == "block") return FullPolicy::kBlock;
  if (name == "drop-oldest") return FullPolicy::kDropOldest;
  if (name == "drop-newest") return FullPolicy::kDropNewest;
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "unknown queue policy '{}': expected block (never lose a frame), drop-oldest or "
              "drop-newest (live sources)",
              name);
}

const char* to_string(FullPolicy policy) {
  switch (policy) {
    case FullPolicy::kBlock:
      return "block";
    case FullPolicy::kDropOldest:
      return "drop-oldest";
    case FullPolicy::kDropNewest:
      return "drop-newest";
  }
  return "?";
}

ErrorPolicy parse_error_policy(const std::string& name) {
  if (name == "stop") return ErrorPolicy::kStop;
  if (name == "skip") return ErrorPolicy::kSkip;
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "unknown error policy '{}': expected stop (end at the first failing frame) or skip "
              "(leave failing frames out, counted)",
              name);
}

bool FrameProcessor::batchable(const Frame& first, const Frame& next) const {
  return first.image.defined() && next.image.defined() && first.image.sizes() == next.image.sizes();
}

WorkerPool::WorkerPool(int workers, ProcessorFactory factory, ResultSink sink, PoolOptions options,
                       StreamStats* stats, PoolEvents events)
    : factory_(std::move(factory)),
      sink_(std::move(sink)),
      options_(options),
      stats_(stats),
      events_(std::move(events)),
      queue_(static_cast<size_t>(std::max<int64_t>(1, options.queue_size())), options.when_full()),
      reorder_(reorder_capacity(options, workers), options.ordered()) {
  GPULAB_CHECK(workers >= 1, ErrorKind::kInvalidArgument,
               "the pool needs at least 1 worker, got {}", workers);
  GPULAB_CHECK(options.queue_size() >= 1, ErrorKind::kInvalidArgument,
               "`queue_size` must be >= 1, got {}", options.queue_size());
  GPULAB_CHECK(options.max_batch() >= 1, ErrorKind::kInvalidArgument,
               "`max_batch` must be >= 1, got {}", options.max_batch());
  GPULAB_CHECK(options.max_delay_ms() >= 0, ErrorKind::kInvalidArgument,
               "`max_delay_ms` must be >= 0, got {}", options.max_delay_ms());
  workers_running_ = workers;
  writer_ = std::thread([this] { run_writer(); });
  for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w] { run_worker(w); });
}

WorkerPool::~WorkerPool() {
  try {
    if (!joined_) {
      stopped_ = true;
      for (Frame& frame : queue_.take_all()) drop(std::move(frame));
      join_all();
    }
  } catch (...) {
  }
}

bool WorkerPool::submit(Frame frame) {
  if (stopped_) return false;
  auto result = queue_.push(std::move(frame));
  if (result.dropped) {
    // Refused (kDropNewest, or the pool closed) or pushed out (kDropOldest).
    drop(std::move(*result.dropped));
  }
  if (stats_) stats_->queue_depth(static_cast<int64_t>(queue_.size()), queue_.capacity());
  return result.accepted;
}

void WorkerPool::drop(Frame&& frame) {
  ++dropped_;
  if (stats_) stats_->frame_dropped();
  reorder_.skip(frame.index);
}

void WorkerPool::stop_with(ErrorKind kind, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (error_.empty()) {
      error_ = message;
      error_kind_ = kind;
    }
  }
  stopped_ = true;
  queue_.close();
  for (Frame& frame : queue_.take_all()) drop(std::move(frame));
}

void WorkerPool::fail_batch(int worker, std::vector<Frame>& batch, const std::string& what,
                            ErrorKind kind) {
  const std::string message =
      fmt::format("worker {} failed on {}: {}", worker, frame_names(batch), what);
  failed_ += static_cast<int64_t>(batch.size());
  if (stats_) stats_->frame_failed(static_cast<int64_t>(batch.size()));
  if (options_.on_error() == ErrorPolicy::kStop) {
    // Before the skips below let later frames come due: none is written.
    int64_t last = last_to_write_.load();
    while (batch.front().index - 1 < last &&
           !last_to_write_.compare_exchange_weak(last, batch.front().index - 1)) {
    }
  }
  for (const Frame& frame : batch) {
    if (events_.frame_failed && options_.on_error() == ErrorPolicy::kSkip) {
      events_.frame_failed(frame, message);
    }
    reorder_.skip(frame.index);
  }
  if (options_.on_error() == ErrorPolicy::kStop) stop_with(kind, message);
}

void WorkerPool::run_worker(int worker) {
  std::unique_ptr<FrameProcessor> processor;
  try {
    processor = factory_(worker);
    ++workers_started_;
  } catch (...) {
    const std::string why = what_of(std::current_exception());
    if (stats_) stats_->worker_failed(worker, why);
    if (events_.worker_failed) events_.worker_failed(worker, why);
    if (--workers_running_ == 0) {
      stop_with(ErrorKind::kUnavailable,
                fmt::format("no worker could start; worker {}: {}", worker, why));
    }
    return;
  }
  const auto delay =
      std::chrono::microseconds(static_cast<int64_t>(options_.max_delay_ms() * 1000));
  const auto fits = [&](const Frame& a, const Frame& b) { return processor->batchable(a, b); };
  while (true) {
    std::vector<Frame> batch =
        queue_.pop_batch(static_cast<size_t>(options_.max_batch()), delay, fits);
    if (batch.empty()) break;
    if (stats_) stats_->queue_depth(static_cast<int64_t>(queue_.size()), queue_.capacity());
    const auto start = StreamClock::now();
    std::vector<FrameOutput> outputs;
    try {
      outputs = processor->process(batch);
      GPULAB_CHECK(outputs.size() == batch.size(), ErrorKind::kInternal,
                   "a frame processor returned {} outputs for {} frames", outputs.size(),
                   batch.size());
    } catch (const Error& e) {
      // Keeps the error's kind: an undecodable file is bad input (exit 2).
      fail_batch(worker, batch, e.what(), e.kind());
      continue;
    } catch (...) {
      fail_batch(worker, batch, what_of(std::current_exception()), ErrorKind::kRuntime);
      continue;
    }
    const double seconds = std::chrono::duration<double>(StreamClock::now() - start).count();
    if (stats_) stats_->batch_done(worker, static_cast<int64_t>(batch.size()), seconds);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!outputs[i].error.empty()) {
        ++failed_;
        if (stats_) stats_->frame_failed();
        if (events_.frame_failed) events_.frame_failed(batch[i], outputs[i].error);
        reorder_.skip(batch[i].index);
        continue;
      }
      PoolResult result{std::move(batch[i]), std::move(outputs[i]), worker};
      const int64_t index = result.frame.index;
      reorder_.put(index, std::move(result));
    }
  }
  processor.reset();
  --workers_running_;
}

void WorkerPool::run_writer() {
  // The writer's tensor work is small (decoding outputs to pixels): one
  // intra-op thread, so that it never starts an OpenMP team of its own that
  // competes with the workers' for the cores (measured: 1 CPU worker with 2
  // threads ran 0.8x a plain loop before this). LibTorch keeps the count
  // per thread; threads started later default to it.
  at::get_num_threads();
  at::set_num_threads(1);
  bool sink_failed = false;
  while (auto next = reorder_.next()) {
    // Keep draining (no worker may wait for room), but write nothing after
    // a failed write or, in order, after a frame that stopped the pool.
    if (sink_failed || (options_.ordered() && next->first > last_to_write_.load())) continue;
    PoolResult& result = next->second;
    try {
      const auto read_at = result.frame.read_at;
      sink_(std::move(result));
      ++written_;
      if (stats_) stats_->frame_written(read_at, StreamClock::now());
    } catch (...) {
      sink_failed = true;
      stop_with(ErrorKind::kIo, fmt::format("writing frame {} failed: {}", next->first,
                                            what_of(std::current_exception())));
    }
  }
}

void WorkerPool::join_all() {
  queue_.close();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  reorder_.finish();
  if (writer_.joinable()) writer_.join();
  joined_ = true;
}

void WorkerPool::finish() {
  if (!joined_) join_all();
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_.empty()) throw Error(error_kind_, error_);
}

void WorkerPool::drop_queued() {
  stopped_ = true;
  queue_.close();
  for (Frame& frame : queue_.take_all()) drop(std::move(frame));
}

void WorkerPool::abandon() {
  drop_queued();
  finish();
}

}  // namespace gpulab::infer
