// The pool's input queue: a fixed number of slots and a policy for a full
// queue (wait, or drop a frame and count it), so memory never grows with a
// source that is faster than the workers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gpulab/core/error.h"

namespace gpulab::infer {

// What push() does when every slot is taken.
enum class FullPolicy {
  kBlock,       // wait for a slot: files, where no frame may be lost
  kDropOldest,  // discard the oldest queued item: live sources, freshest frames win
  kDropNewest,  // refuse the new item: live sources, keep what is queued
};

// "block" | "drop-oldest" | "drop-newest"; Error(kInvalidArgument) listing them.
FullPolicy parse_full_policy(const std::string& name);
const char* to_string(FullPolicy policy);

// Thread-safe (one mutex guards the items and the closed flag): any number
// of producers and consumers. Non-copyable.
template <typename T>
class BoundedQueue {
 public:
  struct PushResult {
    bool accepted = false;     // the item is queued
    std::optional<T> dropped;  // the item that made way (kDropOldest) or was refused (kDropNewest)
  };

  BoundedQueue(size_t capacity, FullPolicy policy) : capacity_(capacity), policy_(policy) {
    GPULAB_CHECK(capacity >= 1, ErrorKind::kInvalidArgument,
                 "a queue needs at least 1 slot, got {}", capacity);
  }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // Adds `item` under the policy. After close() nothing is accepted: the
  // item comes back in `dropped`.
  PushResult push(T item) {
    std::unique_lock<std::mutex> lock(mutex_);
    PushResult result;
    if (policy_ == FullPolicy::kBlock) {
      not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    }
    if (closed_) {
      result.dropped = std::move(item);
      return result;
    }
    if (items_.size() >= capacity_) {
      if (policy_ == FullPolicy::kDropNewest) {
        result.dropped = std::move(item);
        return result;
      }
      result.dropped = std::move(items_.front());
      items_.pop_front();
    }
    items_.push_back(std::move(item));
    result.accepted = true;
    lock.unlock();
    not_empty_.notify_one();
    return result;
  }

  // Waits for the first item, then takes the items behind it while they are
  // fewer than `max` and `fits(first, next)`, waiting up to `max_delay` after
  // the first for more to arrive. Empty only when closed and drained.
  std::vector<T> pop_batch(size_t max, std::chrono::microseconds max_delay,
                           const std::function<bool(const T&, const T&)>& fits = nullptr) {
    std::vector<T> batch;
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return batch;
    batch.push_back(std::move(items_.front()));
    items_.pop_front();
    const auto deadline = std::chrono::steady_clock::now() + max_delay;
    while (batch.size() < max) {
      if (items_.empty()) {
        if (closed_ || max_delay.count() <= 0) break;
        if (!not_empty_.wait_until(lock, deadline, [&] { return closed_ || !items_.empty(); })) {
          break;
        }
        if (items_.empty()) break;
      }
      if (fits && !fits(batch.front(), items_.front())) break;
      batch.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    lock.unlock();
    not_full_.notify_all();
    return batch;
  }

  // No more items are accepted; waiting producers return, consumers drain
  // what is queued.
  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  // Removes and returns every queued item (a stream that is abandoned).
  std::vector<T> take_all() {
    std::vector<T> taken;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& item : items_) taken.push_back(std::move(item));
      items_.clear();
    }
    not_full_.notify_all();
    return taken;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.size();
  }
  size_t capacity() const { return capacity_; }
  FullPolicy policy() const { return policy_; }

 private:
  const size_t capacity_;
  const FullPolicy policy_;
  mutable std::mutex mutex_;  // guards items_ and closed_
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace gpulab::infer
