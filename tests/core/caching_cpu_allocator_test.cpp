// The caching CPU allocator: freed blocks come back for requests of about
// their size, the cache stays under its cap, and once installed LibTorch's
// tensors reuse memory instead of asking the kernel again.
#include <gtest/gtest.h>

#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <thread>
#include <vector>

#include "gpulab/core/caching_cpu_allocator.h"

namespace gpulab::core {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

TEST(CachingCpuAllocatorTest, ReusesAFreedBlockOfTheSameSize) {
  CpuBlockCache cache(64 * kMiB);
  size_t bytes = 0;
  void* first = cache.allocate(3 * kMiB, &bytes);
  ASSERT_NE(first, nullptr);
  cache.free(first, bytes);
  size_t again = 0;
  EXPECT_EQ(cache.allocate(3 * kMiB, &again), first);
  EXPECT_EQ(again, bytes);
  const CpuBlockCacheStats stats = cache.stats();
  EXPECT_EQ(stats.allocations, 2);
  EXPECT_EQ(stats.reuses, 1);
  EXPECT_EQ(stats.cached_bytes, 0u);
  EXPECT_EQ(stats.live_bytes, bytes);
  cache.free(first, again);
}

TEST(CachingCpuAllocatorTest, BlocksAreAlignedAndRoundedTo64KiB) {
  CpuBlockCache cache(64 * kMiB);
  size_t bytes = 0;
  void* block = cache.allocate(1000001, &bytes);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % 64, 0u);
  EXPECT_EQ(bytes, 1048576u);  // 1,000,001 rounded up to 16 x 64 KiB
  cache.free(block, bytes);
}

TEST(CachingCpuAllocatorTest, AMuchLargerCachedBlockIsNotHandedOut) {
  CpuBlockCache cache(64 * kMiB);
  size_t big = 0, small = 0;
  void* large = cache.allocate(16 * kMiB, &big);
  cache.free(large, big);
  void* other = cache.allocate(4 * kMiB, &small);
  EXPECT_EQ(small, 4 * kMiB);
  EXPECT_EQ(cache.stats().reuses, 0);
  EXPECT_EQ(cache.stats().cached_bytes, 16 * kMiB);
  // Within 1/8 slack it is reused.
  size_t near = 0;
  EXPECT_EQ(cache.allocate(15 * kMiB, &near), large);
  EXPECT_EQ(near, 16 * kMiB);
  cache.free(other, small);
  cache.free(large, near);
}

TEST(CachingCpuAllocatorTest, CacheStaysUnderItsCapReleasingLargestFirst) {
  CpuBlockCache cache(10 * kMiB);
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t mib : {2, 3, 4, 5}) {
    size_t bytes = 0;
    blocks.emplace_back(cache.allocate(mib * kMiB, &bytes), bytes);
  }
  for (auto& [block, bytes] : blocks) cache.free(block, bytes);
  // 2 + 3 + 4 fit under 10 MiB; freeing the 5 MiB block released the 4 MiB one.
  EXPECT_LE(cache.stats().cached_bytes, 10 * kMiB);
  EXPECT_EQ(cache.stats().cached_bytes, 2 * kMiB + 3 * kMiB + 5 * kMiB);
  // A block larger than the whole cap is never kept.
  size_t huge = 0;
  void* block = cache.allocate(11 * kMiB, &huge);
  cache.free(block, huge);
  EXPECT_EQ(cache.stats().cached_bytes, 10 * kMiB);
  cache.release_cached_blocks();
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
}

TEST(CachingCpuAllocatorTest, ManyThreadsKeepTheBooksBalanced) {
  CpuBlockCache cache(256 * kMiB);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 200; ++i) {
        size_t bytes = 0;
        void* block = cache.allocate((1 + (i + t) % 5) * kMiB, &bytes);
        ASSERT_NE(block, nullptr);
        static_cast<char*>(block)[bytes - 1] = 1;  // the whole block is usable
        cache.free(block, bytes);
      }
    });
  }
  for (auto& t : threads) t.join();
  const CpuBlockCacheStats stats = cache.stats();
  EXPECT_EQ(stats.allocations, 800);
  EXPECT_EQ(stats.live_bytes, 0u);
  EXPECT_GT(stats.reuses, 700);  // at most one fresh block per size and thread
}

TEST(CachingCpuAllocatorTest, InstalledAllocatorReusesTensorMemory) {
  CpuBlockCache& cache = install_caching_cpu_allocator();
  EXPECT_EQ(installed_cpu_block_cache(), &cache);
  const int64_t reuses_before = cache.stats().reuses;
  const void* first = nullptr;
  {
    at::Tensor a = torch::ones({3, 1024, 1024});  // 12 MiB
    first = a.data_ptr();
    EXPECT_EQ(a.sum().item<float>(), 3 * 1024 * 1024);
  }
  at::Tensor b = torch::zeros({3, 1024, 1024});
  EXPECT_EQ(b.data_ptr(), first);
  EXPECT_EQ(b.sum().item<float>(), 0.0f);
  EXPECT_GT(cache.stats().reuses, reuses_before);
  // Small tensors bypass the cache.
  const int64_t allocations = cache.stats().allocations;
  at::Tensor small = torch::ones({16});
  EXPECT_EQ(cache.stats().allocations, allocations);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data_ptr()) % 64, 0u);
  // The raw API (oneDNN's scratch memory) frees through raw_deleter().
  c10::Allocator* allocator = c10::GetCPUAllocator();
  for (size_t bytes : {size_t{100}, 8 * kMiB}) {
    void* raw = allocator->raw_allocate(bytes);
    ASSERT_NE(raw, nullptr);
    static_cast<char*>(raw)[bytes - 1] = 1;
    allocator->raw_deallocate(raw);
  }
  EXPECT_EQ(cache.stats().live_bytes, 12 * kMiB + 64 * 1024);  // b: 12 MiB + its header, rounded
}

}  // namespace
}  // namespace gpulab::core
