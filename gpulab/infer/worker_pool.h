// The inference pool: frames go through a bounded queue to workers (one per
// device, each owning its model replica), and their outputs come back in
// input order (or as they finish) to one writer. Works for any model: what a
// worker does with a frame is a FrameProcessor.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>

#include "gpulab/core/options.h"
#include "gpulab/infer/bounded_queue.h"
#include "gpulab/infer/frame.h"
#include "gpulab/infer/reorder_buffer.h"

namespace gpulab::infer {

class StreamStats;

// What the pool does when a frame fails (its decode or forward pass throws).
enum class ErrorPolicy {
  // End the stream: no more frames are taken, nothing after the failing
  // frame is written (in order), finish() throws naming the frame.
  kStop,
  kSkip,  // leave the frame out (counted and reported), go on
};
// "stop" | "skip"; Error(kInvalidArgument) listing them.
ErrorPolicy parse_error_policy(const std::string& name);

struct PoolOptions {
  // Frames waiting for a worker: the most a source can be ahead of them.
  GPULAB_ARG(int64_t, queue_size) = 8;
  GPULAB_ARG(FullPolicy, when_full) = FullPolicy::kBlock;
  // Outputs in input order (a reorder buffer); false: as workers finish them.
  GPULAB_ARG(bool, ordered) = true;
  // Dynamic batching: a worker takes up to this many queued frames that its
  // processor can batch together (equal size) ...
  GPULAB_ARG(int64_t, max_batch) = 1;
  // ... waiting at most this long (milliseconds) after the first for more.
  GPULAB_ARG(double, max_delay_ms) = 0;
  GPULAB_ARG(ErrorPolicy, on_error) = ErrorPolicy::kStop;
  // Finished outputs held back for order (0 = queue_size + workers x
  // max_batch): with the queue, what bounds memory.
  GPULAB_ARG(int64_t, reorder_capacity) = 0;
};

// What a worker made of one frame.
struct FrameOutput {
  at::Tensor image;   // [C, H, W] uint8: the network's input (what overlays draw on)
  at::Tensor output;  // the network's raw output, float32 CPU, batch dimension dropped
  // Non-empty: the processor left this frame out for this reason (e.g. an
  // undecodable file it was told to skip); the pool counts and reports it
  // as a failed frame whatever the error policy, and the others go on.
  std::string error;
};

// One finished frame, as the writer receives it.
struct PoolResult {
  Frame frame;
  FrameOutput output;
  int worker = 0;
};

// One worker's model: made on, and used only by, that worker's thread.
class FrameProcessor {
 public:
  virtual ~FrameProcessor() = default;
  // The outputs of `frames` (1 to max_batch frames that batchable() allowed
  // together), in order. An exception fails every frame of the batch.
  virtual std::vector<FrameOutput> process(std::vector<Frame>& frames) = 0;
  // Whether `next` may join a batch that starts with `first`. Default: both
  // decoded, of one shape (frames a worker decodes itself run alone).
  virtual bool batchable(const Frame& first, const Frame& next) const;
};

// Makes worker `worker`'s processor (on its own thread: a replica loads
// there). A throw marks that worker failed; the others go on.
using ProcessorFactory = std::function<std::unique_ptr<FrameProcessor>(int worker)>;
// Receives every finished frame on the pool's one writer thread, in input
// order unless PoolOptions::ordered is false. A throw stops the pool.
using ResultSink = std::function<void(PoolResult&&)>;

// Events reported as they happen (optional; on worker or writer threads).
struct PoolEvents {
  std::function<void(const Frame&, const std::string&)> frame_failed;  // under kSkip
  std::function<void(int worker, const std::string&)> worker_failed;
};

// submit() from one thread (the source's); finish() or abandon() once from
// that same thread. Non-copyable.
class WorkerPool {
 public:
  // Starts `workers` worker threads and the writer thread. `stats` (may be
  // null) must outlive the pool.
  WorkerPool(int workers, ProcessorFactory factory, ResultSink sink, PoolOptions options = {},
             StreamStats* stats = nullptr, PoolEvents events = {});
  // Abandons what is still queued and joins the threads; never throws.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Hands a frame to the pool under the queue policy (kBlock waits for a
  // slot). False when it was not taken: refused by kDropNewest, or the pool
  // has stopped. A frame that kDropOldest pushes out is counted as dropped.
  bool submit(Frame frame);
  // No more frames: waits until every taken frame is written, skipped or
  // dropped, and joins the threads. Throws the error that stopped the pool
  // (naming the frame, the worker, or the writer), or Error(kUnavailable)
  // when no worker could start.
  void finish();
  // Stops taking frames and drops the queued ones (counted); frames being
  // processed finish and are written. Then as finish().
  void abandon();

  // Drops the frames still queued (counted); thread-safe, for a second stop
  // request while finish() drains.
  void drop_queued();

  // An error under kStop (or every worker failing, or the writer failing)
  // ended the pool: submit() no longer takes frames.
  bool stopped() const { return stopped_.load(); }
  int workers() const { return static_cast<int>(threads_.size()); }
  int64_t queue_depth() const { return static_cast<int64_t>(queue_.size()); }
  int64_t frames_dropped() const { return dropped_.load(); }
  int64_t frames_failed() const { return failed_.load(); }
  int64_t frames_written() const { return written_.load(); }

 private:
  void run_worker(int worker);
  void run_writer();
  // Records the error that ends the pool (the first wins) and stops it.
  void stop_with(ErrorKind kind, const std::string& message);
  void drop(Frame&& frame);
  void fail_batch(int worker, std::vector<Frame>& batch, const std::string& what, ErrorKind kind);
  void join_all();

  ProcessorFactory factory_;
  ResultSink sink_;
  PoolOptions options_;
  StreamStats* stats_;
  PoolEvents events_;
  BoundedQueue<Frame> queue_;
  ReorderBuffer<PoolResult> reorder_;
  std::vector<std::thread> threads_;
  std::thread writer_;
  std::atomic<bool> stopped_{false};
  std::atomic<int> workers_running_{0};
  std::atomic<int> workers_started_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> written_{0};
  // Under kStop, the last frame to write: the one before the first failure.
  std::atomic<int64_t> last_to_write_{INT64_MAX};
  std::mutex error_mutex_;  // guards error_ and error_kind_
  std::string error_;
  ErrorKind error_kind_ = ErrorKind::kRuntime;
  bool joined_ = false;
};

}  // namespace gpulab::infer
