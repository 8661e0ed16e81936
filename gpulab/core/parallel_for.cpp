// parallel_for: an atomic counter hands out items; the lowest failure wins.
#include "gpulab/core/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace gpulab::core {

void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;  // guards error and error_item
  std::exception_ptr error;
  int64_t error_item = n;
  auto work = [&] {
    while (!failed.load()) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_item) {
          error = std::current_exception();
          error_item = i;
        }
        failed.store(true);
      }
    }
  };
  const int wanted =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t count = std::max<int64_t>(1, std::min<int64_t>(wanted, n));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < count; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace gpulab::core
