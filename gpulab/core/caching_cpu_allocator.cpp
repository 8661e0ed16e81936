// The block cache, and the c10::Allocator that puts it under LibTorch's CPU
// tensors.
#include "gpulab/core/caching_cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iterator>

#include "gpulab/core/compat.h"

namespace gpulab::core {
namespace {

constexpr size_t kAlignment = 64;             // LibTorch's CPU alignment (c10::gAlignment)
constexpr size_t kGranule = size_t{1} << 16;  // sizes round up to 64 KiB

size_t quarter_of_physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return size_t{4} << 30;
  return static_cast<size_t>(pages) * static_cast<size_t>(page) / 4;
}

}  // namespace

CpuBlockCache::CpuBlockCache(size_t max_cached_bytes) : max_cached_bytes_(max_cached_bytes) {}

CpuBlockCache::~CpuBlockCache() {
  release_cached_blocks();
}

void* CpuBlockCache::allocate(size_t bytes, size_t* block_bytes) {
  const size_t size = (bytes + kGranule - 1) / kGranule * kGranule;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    // Best fit within 1/8 slack: steps re-request the same sizes, and a much
    // larger block would hold memory that a later, larger request needs.
    auto it = cached_.lower_bound(size);
    if (it != cached_.end() && it->first <= size + size / 8) {
      void* block = it->second;
      *block_bytes = it->first;
      stats_.cached_bytes -= it->first;
      stats_.live_bytes += it->first;
      ++stats_.reuses;
      cached_.erase(it);
      return block;
    }
  }
  void* block = nullptr;
  if (posix_memalign(&block, kAlignment, size) != 0) {
    // Out of memory: what the cache holds may be enough.
    release_cached_blocks();
    if (posix_memalign(&block, kAlignment, size) != 0) return nullptr;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.live_bytes += size;
  *block_bytes = size;
  return block;
}

void CpuBlockCache::free(void* block, size_t block_bytes) {
  if (block == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.live_bytes -= block_bytes;
  if (block_bytes > max_cached_bytes_) {
    std::free(block);
    return;
  }
  release_locked(max_cached_bytes_ - block_bytes);
  cached_.emplace(block_bytes, block);
  stats_.cached_bytes += block_bytes;
}

void CpuBlockCache::release_locked(size_t keep_at_most) {
  while (stats_.cached_bytes > keep_at_most && !cached_.empty()) {
    auto largest = std::prev(cached_.end());
    stats_.cached_bytes -= largest->first;
    std::free(largest->second);
    cached_.erase(largest);
  }
}

CpuBlockCacheStats CpuBlockCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CpuBlockCache::release_cached_blocks() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_locked(0);
}

namespace {

// Each allocation carries a header in the 64 bytes before its data, so that
// the deleter needs only the data pointer: LibTorch's raw_allocate /
// raw_deallocate API (oneDNN's scratch memory uses it) requires the DataPtr's
// context to be its data.
struct BlockHeader {
  CpuBlockCache* cache;  // nullptr: a small block from posix_memalign
  size_t block_bytes;    // the whole block, header included
};
static_assert(sizeof(BlockHeader) <= kAlignment, "the header must fit its slot");

void release(void* data) {
  if (data == nullptr) return;
  void* base = static_cast<char*>(data) - kAlignment;
  const BlockHeader header = *static_cast<BlockHeader*>(base);
  if (header.cache != nullptr) {
    header.cache->free(base, header.block_bytes);
  } else {
    std::free(base);
  }
}

// Puts the cache under LibTorch's CPU tensors; requests below
// min_cached_bytes get plain aligned blocks.
class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(CachingCpuAllocatorOptions options)
      : min_cached_bytes_(options.min_cached_bytes()),
        cache_(options.max_cached_bytes() > 0 ? options.max_cached_bytes()
                                              : quarter_of_physical_memory()) {}

  c10::DataPtr allocate(size_t bytes) GPULAB_ALLOCATE_CONST override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (bytes == 0) return {nullptr, nullptr, &release, cpu};
    const size_t total = bytes + kAlignment;
    void* base = nullptr;
    BlockHeader header{nullptr, total};
    if (bytes >= min_cached_bytes_) {
      header.cache = &cache_;
      base = cache_.allocate(total, &header.block_bytes);
    } else if (posix_memalign(&base, kAlignment, total) != 0) {
      base = nullptr;
    }
    TORCH_CHECK(base != nullptr, "gpulab caching CPU allocator: out of memory allocating ", bytes,
                " bytes");
    *static_cast<BlockHeader*>(base) = header;
    void* data = static_cast<char*>(base) + kAlignment;
    return {data, data, &release, cpu};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  // Pure virtual from LibTorch 2.3; a plain member before.
  void copy_data(void* dest, const void* src, std::size_t count) const {
    std::memcpy(dest, src, count);
  }

  CpuBlockCache& cache() { return cache_; }

 private:
  const size_t min_cached_bytes_;
  mutable CpuBlockCache cache_;
};

std::mutex g_install_mutex;
CachingCpuAllocator* g_installed = nullptr;  // guarded by g_install_mutex; never freed

}  // namespace

CpuBlockCache& install_caching_cpu_allocator(CachingCpuAllocatorOptions options) {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  if (g_installed == nullptr) {
    // Process lifetime: tensors freed during exit still call its deleter.
    g_installed = new CachingCpuAllocator(options);
    c10::SetCPUAllocator(g_installed, /*priority=*/1);
  }
  return g_installed->cache();
}

CpuBlockCache* installed_cpu_block_cache() {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  return g_installed ? &g_installed->cache() : nullptr;
}

}  // namespace gpulab::core
