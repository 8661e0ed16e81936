// A small work-sharing loop for I/O and decoding (folder walks, image
// decoding, downloads), not for tensor math: LibTorch has its own pool.
#pragma once

#include <cstdint>
#include <functional>

namespace gpulab::core {

// Runs fn(0..n-1) on up to `threads` threads (0 = one per core), items
// claimed in increasing order. After an exception no new item starts; the
// exception of the lowest item that threw is rethrown, so a failure is the
// one a sequential loop would meet first, whatever the thread count.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn);

}  // namespace gpulab::core
