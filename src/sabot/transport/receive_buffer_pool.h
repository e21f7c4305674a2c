#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <arrow/memory_pool.h>

#include "sabot/common/thread_annotations.h"

namespace sabot {

// The memory pool for the buffers a Flight reader allocates as it receives: gRPC hands out a
// message body wherever it landed in its buffers, and the IPC reader copies each misaligned
// buffer once into memory from this pool (IpcReadOptions::memory_pool). Those copies are made
// and dropped at the rate blocks arrive, and Arrow's allocator (mimalloc, told to give freed
// memory back at once: common/process_memory.h) hands many of them fresh pages, which the
// kernel faults in and zeroes (docs/performance.md: about 18 % of the page faults of `sabot
// shuffle --agents 2`). This pool keeps the buffers freed most recently, up to
// `retained_limit_bytes` in all, and
// hands them out again to allocations of the same size class: receive buffers are reused,
// resident memory stays bounded by that limit beyond what is in use.
//
// Size classes: an allocation of at least kMinRecycledBytes is rounded up to a multiple of
// kRecycleGranularity (so blocks of nearly equal size share buffers); smaller ones go to the
// parent pool as they are. Every byte, retained or in use, is allocated from `parent` and
// charged there; bytes_allocated() counts what is in use plus what is retained.
//
// Lifetime: buffers allocated here call Free() on this pool when the last batch holding them
// goes, which may be long after the reader that received them: Global() is never destroyed;
// a pool made by Make() must outlive every buffer it handed out (tests).
// Thread safety: safe for concurrent use; a short mutex guards the free lists, and the parent
// pool is called outside it.
class ReceiveBufferPool : public arrow::MemoryPool {
 public:
  static constexpr int64_t kMinRecycledBytes = 16 * 1024;
  static constexpr int64_t kRecycleGranularity = 16 * 1024;
  // Global()'s limit: 16 MiB, the buffers of 64 blocks of the default 256 KiB.
  static constexpr int64_t kDefaultRetainedLimitBytes = 16 << 20;

  static std::unique_ptr<ReceiveBufferPool> Make(arrow::MemoryPool* parent,
                                                 int64_t retained_limit_bytes);
  // The process's pool over arrow::default_memory_pool(), kDefaultRetainedLimitBytes.
  static ReceiveBufferPool* Global();

  ~ReceiveBufferPool() override;

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;
  // Gives every retained buffer back to the parent.
  void ReleaseUnused() override;

  int64_t bytes_allocated() const override;
  int64_t max_memory() const override;
  int64_t total_bytes_allocated() const override;
  int64_t num_allocations() const override;
  std::string backend_name() const override;

  // Bytes held for reuse now (<= retained_limit_bytes), and allocations served from them.
  int64_t retained_bytes() const;
  int64_t reused_allocations() const;

 private:
  ReceiveBufferPool(arrow::MemoryPool* parent, int64_t retained_limit_bytes)
      : parent_(parent), retained_limit_bytes_(retained_limit_bytes) {}

  // The bytes an allocation of `size` takes (its size class); `size` itself when not recycled.
  static int64_t ClassBytes(int64_t size);

  arrow::MemoryPool* const parent_;
  const int64_t retained_limit_bytes_;
  mutable std::mutex mutex_;
  // Free buffers by (alignment, class bytes); the most recently freed last.
  std::map<std::pair<int64_t, int64_t>, std::vector<uint8_t*>> free_ SABOT_GUARDED_BY(mutex_);
  int64_t retained_bytes_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t reused_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t in_use_bytes_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t max_bytes_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t allocations_ SABOT_GUARDED_BY(mutex_) = 0;
  int64_t total_bytes_ SABOT_GUARDED_BY(mutex_) = 0;
};

}  // namespace sabot
