// A caching CPU allocator for LibTorch tensors: freed large blocks are kept
// for reuse, as LibTorch's CUDA caching allocator does on GPUs. A training
// step or a loader batch allocates the same sizes every iteration; glibc hands
// blocks above its mmap threshold (at most 32 MiB) back to the kernel, so
// without a cache every step page-faults and zeroes them again: 42% of the
// streaming loader's time on the 2-core VM (docs/benchmarks.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "gpulab/core/options.h"

namespace gpulab::core {

struct CachingCpuAllocatorOptions {
  // Requests below this size get plain aligned blocks (glibc keeps small
  // blocks in its heap already).
  GPULAB_ARG(size_t, min_cached_bytes) = size_t{1} << 20;
  // Most bytes kept in freed blocks; 0 = a quarter of physical memory. Past
  // it, the largest cached blocks are released first.
  GPULAB_ARG(size_t, max_cached_bytes) = 0;
};

struct CpuBlockCacheStats {
  int64_t allocations = 0;  // blocks handed out
  int64_t reuses = 0;       // of those, taken from the cache
  size_t cached_bytes = 0;  // held in freed blocks now
  size_t live_bytes = 0;    // handed out and not yet freed
};

// The cache behind the allocator: 64-byte aligned blocks, sizes rounded up to
// 64 KiB; a request takes the smallest cached block of at least its size and
// at most 1/8 more. Thread-safe; not copyable.
class CpuBlockCache {
 public:
  explicit CpuBlockCache(size_t max_cached_bytes);
  ~CpuBlockCache();  // releases the cached blocks (not the live ones)
  CpuBlockCache(const CpuBlockCache&) = delete;
  CpuBlockCache& operator=(const CpuBlockCache&) = delete;

  // A block of at least `bytes` (> 0); its size goes to *block_bytes and must
  // come back with it to free(). nullptr when the system has no memory left,
  // even after the cache was released.
  void* allocate(size_t bytes, size_t* block_bytes);
  void free(void* block, size_t block_bytes);

  CpuBlockCacheStats stats() const;
  void release_cached_blocks();

 private:
  void release_locked(size_t keep_at_most);

  const size_t max_cached_bytes_;
  mutable std::mutex mutex_;             // guards everything below
  std::multimap<size_t, void*> cached_;  // block size -> freed block
  CpuBlockCacheStats stats_;
};

// Makes a process-lifetime caching allocator LibTorch's CPU allocator for
// every tensor allocated from now on, and returns its cache. Call early in
// main(); later calls return the same cache and change nothing.
CpuBlockCache& install_caching_cpu_allocator(
    CachingCpuAllocatorOptions options = CachingCpuAllocatorOptions());

// The cache install_caching_cpu_allocator() installed, or nullptr.
CpuBlockCache* installed_cpu_block_cache();

}  // namespace gpulab::core
