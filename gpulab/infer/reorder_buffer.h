// Puts results that workers finish out of order back into input order (by
// the frame's sequence number), in bounded memory; or passes them on as they
// come when order does not matter.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

namespace gpulab::infer {

// Thread-safe (one mutex guards everything): workers put(), one writer calls
// next(). Sequence numbers start at 0; every number is either put() or
// skip()ped exactly once. Non-copyable.
template <typename T>
class ReorderBuffer {
 public:
  // capacity: the most results held (0 = no bound). The result due next is
  // always accepted, so the oldest frame in flight is never stuck behind
  // later ones and a bounded buffer cannot deadlock a pool whose workers
  // take frames in sequence order.
  ReorderBuffer(size_t capacity, bool ordered) : capacity_(capacity), ordered_(ordered) {}
  ReorderBuffer(const ReorderBuffer&) = delete;
  ReorderBuffer& operator=(const ReorderBuffer&) = delete;

  // Adds the result of frame `index`; waits while the buffer is full and the
  // result is not the one due next. False (the value is discarded) after
  // abort().
  bool put(int64_t index, T value) {
    std::unique_lock<std::mutex> lock(mutex_);
    room_.wait(lock, [&] {
      return aborted_ || capacity_ == 0 || ready_.size() < capacity_ ||
             (ordered_ && index == next_);
    });
    if (aborted_) return false;
    ready_.emplace(index, std::move(value));
    lock.unlock();
    ready_changed_.notify_all();
    return true;
  }

  // Frame `index` will have no result (dropped, or failed and skipped).
  void skip(int64_t index) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (index < next_) return;
      skipped_.insert(index);
      advance_past_skipped();
    }
    ready_changed_.notify_all();
    room_.notify_all();
  }

  // The next result: in sequence order, or the earliest finished when not
  // ordered. Waits for it; nullopt once finish() was called and nothing is
  // left, or after abort().
  std::optional<std::pair<int64_t, T>> next() {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_changed_.wait(lock, [&] { return aborted_ || due() || (finished_ && ready_.empty()); });
    if (aborted_ || !due()) return std::nullopt;
    // The one due next; once finished, the earliest left (a gap no longer waits).
    auto it = ordered_ ? ready_.find(next_) : ready_.end();
    if (it == ready_.end()) it = ready_.begin();
    return take(it);
  }

  // No more put() or skip() will come: next() returns what is left (in
  // order; a gap no longer waits), then nullopt.
  void finish() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
    }
    ready_changed_.notify_all();
  }

  // Wakes every waiter; put() and next() return at once from now on.
  void abort() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      aborted_ = true;
    }
    ready_changed_.notify_all();
    room_.notify_all();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ready_.size();
  }

 private:
  // Whether next() has a result to hand out now (mutex_ held).
  bool due() const {
    if (ready_.empty()) return false;
    if (!ordered_) return true;
    if (ready_.count(next_)) return true;
    return finished_;  // gaps no longer wait once nothing else will come
  }

  // Removes `it` from ready_ and moves next_ past it (mutex_ held).
  std::optional<std::pair<int64_t, T>> take(typename std::map<int64_t, T>::iterator it) {
    std::pair<int64_t, T> taken(it->first, std::move(it->second));
    ready_.erase(it);
    if (taken.first >= next_) {
      next_ = taken.first + 1;
      advance_past_skipped();
    }
    room_.notify_all();
    return taken;
  }

  void advance_past_skipped() {
    while (!skipped_.empty() && *skipped_.begin() <= next_) {
      if (*skipped_.begin() == next_) ++next_;
      skipped_.erase(skipped_.begin());
    }
  }

  const size_t capacity_;
  const bool ordered_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable room_;
  std::condition_variable ready_changed_;
  std::map<int64_t, T> ready_;  // finished results, by sequence number
  std::set<int64_t> skipped_;   // numbers at or after next_ that will never come
  int64_t next_ = 0;            // the sequence number due next (ordered)
  bool finished_ = false;
  bool aborted_ = false;
};

}  // namespace gpulab::infer
