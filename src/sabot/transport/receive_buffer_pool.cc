#include "sabot/transport/receive_buffer_pool.h"

#include <algorithm>
#include <cstring>

namespace sabot {

std::unique_ptr<ReceiveBufferPool> ReceiveBufferPool::Make(arrow::MemoryPool* parent,
                                                           int64_t retained_limit_bytes) {
  return std::unique_ptr<ReceiveBufferPool>(
      new ReceiveBufferPool(parent, std::max<int64_t>(retained_limit_bytes, 0)));
}

ReceiveBufferPool* ReceiveBufferPool::Global() {
  // Never destroyed: batches holding its buffers may be freed during static destruction.
  static ReceiveBufferPool* pool =
      new ReceiveBufferPool(arrow::default_memory_pool(), kDefaultRetainedLimitBytes);
  return pool;
}

ReceiveBufferPool::~ReceiveBufferPool() { ReleaseUnused(); }

int64_t ReceiveBufferPool::ClassBytes(int64_t size) {
  if (size < kMinRecycledBytes) return size;
  return (size + kRecycleGranularity - 1) / kRecycleGranularity * kRecycleGranularity;
}

arrow::Status ReceiveBufferPool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
  if (size < 0) return arrow::Status::Invalid("ReceiveBufferPool: negative allocation size ", size);
  const int64_t bytes = ClassBytes(size);
  if (bytes >= kMinRecycledBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find({alignment, bytes});
    if (it != free_.end() && !it->second.empty()) {
      *out = it->second.back();
      it->second.pop_back();
      retained_bytes_ -= bytes;
      ++reused_;
      ++allocations_;
      total_bytes_ += bytes;
      in_use_bytes_ += bytes;
      return arrow::Status::OK();
    }
  }
  ARROW_RETURN_NOT_OK(parent_->Allocate(bytes, alignment, out));
  std::lock_guard<std::mutex> lock(mutex_);
  ++allocations_;
  total_bytes_ += bytes;
  in_use_bytes_ += bytes;
  max_bytes_ = std::max(max_bytes_, in_use_bytes_ + retained_bytes_);
  return arrow::Status::OK();
}

arrow::Status ReceiveBufferPool::Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                                            uint8_t** ptr) {
  if (new_size < 0) {
    return arrow::Status::Invalid("ReceiveBufferPool: negative reallocation size ", new_size);
  }
  if (ClassBytes(old_size) == ClassBytes(new_size)) return arrow::Status::OK();
  uint8_t* moved = nullptr;
  ARROW_RETURN_NOT_OK(Allocate(new_size, alignment, &moved));
  std::memcpy(moved, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
  Free(*ptr, old_size, alignment);
  *ptr = moved;
  return arrow::Status::OK();
}

void ReceiveBufferPool::Free(uint8_t* buffer, int64_t size, int64_t alignment) {
  const int64_t bytes = ClassBytes(size);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_bytes_ -= bytes;
    if (bytes >= kMinRecycledBytes && retained_bytes_ + bytes <= retained_limit_bytes_) {
      free_[{alignment, bytes}].push_back(buffer);
      retained_bytes_ += bytes;
      return;
    }
  }
  parent_->Free(buffer, bytes, alignment);
}

void ReceiveBufferPool::ReleaseUnused() {
  std::map<std::pair<int64_t, int64_t>, std::vector<uint8_t*>> released;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released.swap(free_);
    retained_bytes_ = 0;
  }
  for (auto& [size_class, buffers] : released) {
    for (uint8_t* buffer : buffers) parent_->Free(buffer, size_class.second, size_class.first);
  }
}

int64_t ReceiveBufferPool::bytes_allocated() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_bytes_ + retained_bytes_;
}

int64_t ReceiveBufferPool::max_memory() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return max_bytes_;
}

int64_t ReceiveBufferPool::total_bytes_allocated() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_bytes_;
}

int64_t ReceiveBufferPool::num_allocations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return allocations_;
}

std::string ReceiveBufferPool::backend_name() const {
  return "receive-buffers(" + parent_->backend_name() + ")";
}

int64_t ReceiveBufferPool::retained_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return retained_bytes_;
}

int64_t ReceiveBufferPool::reused_allocations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reused_;
}

}  // namespace sabot
