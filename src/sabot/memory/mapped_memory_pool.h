#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/common/thread_annotations.h"

namespace sabot {

// An arrow::MemoryPool whose large allocations are pages mapped for them alone (mmap) and
// returned to the operating system when freed (munmap), beyond a small cache of freed mappings
// kept for reuse. A general-purpose allocator (mimalloc, jemalloc, glibc) keeps freed memory in
// per-thread heaps and arenas, so a process's resident memory can stay several times above what
// it holds; here what is resident follows what is allocated, plus at most `cache_bytes`. Small
// allocations (below `min_mapped_bytes`) go to `parent`.
//
// The shuffle manager backs its budget (BudgetedMemoryPool) with one, so that an agent's
// resident memory stays near its budget. Mappings are rounded up to 64 KiB; a fresh mapping's
// pages up to the requested size are faulted in at once (one madvise(MADV_POPULATE_WRITE) call
// instead of a trap per page at first write: buffers are written whole right after), the rest
// of the 64 KiB stays unbacked until touched.
//
// Lifetime: outlives every buffer allocated from it; `parent` outlives it. Thread safety: safe
// for concurrent use.
class MappedMemoryPool : public arrow::MemoryPool {
 public:
  static constexpr int64_t kDefaultMinMappedBytes = 64 << 10;
  static constexpr int64_t kDefaultCacheBytes = 8 << 20;

  static arrow::Result<std::unique_ptr<MappedMemoryPool>> Make(
      int64_t min_mapped_bytes = kDefaultMinMappedBytes,
      int64_t cache_bytes = kDefaultCacheBytes,
      arrow::MemoryPool* parent = arrow::default_memory_pool());
  ~MappedMemoryPool() override;

  using arrow::MemoryPool::Allocate;
  using arrow::MemoryPool::Free;
  using arrow::MemoryPool::Reallocate;
  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;

  int64_t bytes_allocated() const override { return used_.load(std::memory_order_relaxed); }
  int64_t max_memory() const override { return peak_.load(std::memory_order_relaxed); }
  int64_t total_bytes_allocated() const override {
    return total_.load(std::memory_order_relaxed);
  }
  int64_t num_allocations() const override { return count_.load(std::memory_order_relaxed); }
  std::string backend_name() const override { return "sabot-mapped"; }

  // Bytes of freed mappings kept for reuse (at most the cache size).
  int64_t cached_bytes() const;

 private:
  MappedMemoryPool(int64_t min_mapped_bytes, int64_t cache_bytes, arrow::MemoryPool* parent);
  bool Mapped(int64_t size, int64_t alignment) const;
  arrow::Status Map(int64_t size, uint8_t** out);
  void Unmap(uint8_t* buffer, int64_t size);
  void Count(int64_t delta);

  const int64_t min_mapped_bytes_;
  const int64_t cache_limit_;
  arrow::MemoryPool* const parent_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> count_{0};

  mutable std::mutex mutex_;
  // Freed mappings by their (rounded) length.
  std::multimap<int64_t, uint8_t*> cache_ SABOT_GUARDED_BY(mutex_);
  int64_t cached_ SABOT_GUARDED_BY(mutex_) = 0;
};

}  // namespace sabot
