#include "sabot/memory/mapped_memory_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace sabot {

namespace {

constexpr int64_t kGranule = 64 << 10;

int64_t RoundUp(int64_t size) { return (size + kGranule - 1) / kGranule * kGranule; }

}  // namespace

arrow::Result<std::unique_ptr<MappedMemoryPool>> MappedMemoryPool::Make(
    int64_t min_mapped_bytes, int64_t cache_bytes, arrow::MemoryPool* parent) {
  if (min_mapped_bytes < 4096) {
    return arrow::Status::Invalid("mapped allocations must be at least a page, got ",
                                  min_mapped_bytes, " bytes");
  }
  if (cache_bytes < 0) return arrow::Status::Invalid("mapping cache must be >= 0 bytes");
  if (parent == nullptr) return arrow::Status::Invalid("mapped pool needs a parent pool");
  return std::unique_ptr<MappedMemoryPool>(
      new MappedMemoryPool(min_mapped_bytes, cache_bytes, parent));
}

MappedMemoryPool::MappedMemoryPool(int64_t min_mapped_bytes, int64_t cache_bytes,
                                   arrow::MemoryPool* parent)
    : min_mapped_bytes_(min_mapped_bytes), cache_limit_(cache_bytes), parent_(parent) {}

MappedMemoryPool::~MappedMemoryPool() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [length, address] : cache_) munmap(address, static_cast<size_t>(length));
  cache_.clear();
  cached_ = 0;
}

bool MappedMemoryPool::Mapped(int64_t size, int64_t alignment) const {
  // Mappings are page-aligned, which serves any alignment up to a page.
  return size >= min_mapped_bytes_ && alignment <= 4096;
}

void MappedMemoryPool::Count(int64_t delta) {
  const int64_t now = used_.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta <= 0) return;
  total_.fetch_add(delta, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

arrow::Status MappedMemoryPool::Map(int64_t size, uint8_t** out) {
  const int64_t length = RoundUp(size);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(length);
    if (it != cache_.end()) {
      *out = it->second;
      cached_ -= length;
      cache_.erase(it);
      return arrow::Status::OK();
    }
  }
  void* address = mmap(nullptr, static_cast<size_t>(length), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address == MAP_FAILED) {
    return arrow::Status::OutOfMemory("mapping ", length, " bytes failed: ", std::strerror(errno));
  }
  // Fault in the pages the allocation uses in one call, rather than one trap per 4 KiB page at
  // the first write (a buffer allocated here is written whole, by the scatter or a copy, right
  // after): the same zeroed pages for less CPU (a HASH 4x4 shuffle: 16 % less, measured in
  // docs/performance.md, "Local shuffle, --bench"). Only the requested
  // bytes: the rest of the granule stays unbacked until touched. Best effort: a kernel without
  // MADV_POPULATE_WRITE (before Linux 5.14) faults them in on first touch as before.
#ifdef MADV_POPULATE_WRITE
  const int64_t page = 4096;
  (void)madvise(address, static_cast<size_t>((size + page - 1) / page * page),
                MADV_POPULATE_WRITE);
#endif
  *out = static_cast<uint8_t*>(address);
  return arrow::Status::OK();
}

void MappedMemoryPool::Unmap(uint8_t* buffer, int64_t size) {
  const int64_t length = RoundUp(size);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ + length <= cache_limit_) {
      cache_.emplace(length, buffer);
      cached_ += length;
      return;
    }
  }
  munmap(buffer, static_cast<size_t>(length));
}

arrow::Status MappedMemoryPool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
  if (size < 0) return arrow::Status::Invalid("negative allocation size ", size);
  if (!Mapped(size, alignment)) {
    ARROW_RETURN_NOT_OK(parent_->Allocate(size, alignment, out));
  } else {
    ARROW_RETURN_NOT_OK(Map(size, out));
  }
  Count(size);
  return arrow::Status::OK();
}

arrow::Status MappedMemoryPool::Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                                           uint8_t** ptr) {
  if (new_size < 0) return arrow::Status::Invalid("negative allocation size ", new_size);
  const bool was_mapped = Mapped(old_size, alignment);
  const bool mapped = Mapped(new_size, alignment);
  if (!was_mapped && !mapped) {
    ARROW_RETURN_NOT_OK(parent_->Reallocate(old_size, new_size, alignment, ptr));
  } else if (was_mapped && mapped && RoundUp(old_size) == RoundUp(new_size)) {
    // Same mapping.
  } else {
    uint8_t* moved = nullptr;
    if (mapped) {
      ARROW_RETURN_NOT_OK(Map(new_size, &moved));
    } else {
      ARROW_RETURN_NOT_OK(parent_->Allocate(new_size, alignment, &moved));
    }
    std::memcpy(moved, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
    if (was_mapped) {
      Unmap(*ptr, old_size);
    } else {
      parent_->Free(*ptr, old_size, alignment);
    }
    *ptr = moved;
  }
  Count(new_size - old_size);
  return arrow::Status::OK();
}

void MappedMemoryPool::Free(uint8_t* buffer, int64_t size, int64_t alignment) {
  if (Mapped(size, alignment)) {
    Unmap(buffer, size);
  } else {
    parent_->Free(buffer, size, alignment);
  }
  Count(-size);
}

int64_t MappedMemoryPool::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

}  // namespace sabot
