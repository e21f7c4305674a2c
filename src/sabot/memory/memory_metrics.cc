#include "sabot/memory/memory_metrics.h"

#include "sabot/memory/budget_pool.h"

namespace sabot {

namespace {

void Accumulate(const MemoryCounters& from, MemoryCounters* into) {
  into->bytes_buffered += from.bytes_buffered;
  into->rows_buffered += from.rows_buffered;
  into->exclusive_segments_in_use += from.exclusive_segments_in_use;
  into->floating_segments_in_use += from.floating_segments_in_use;
  into->spill_files_open += from.spill_files_open;
  into->blocked_nanos += from.blocked_nanos;
  into->blocked_waits += from.blocked_waits;
  into->bytes_spilled += from.bytes_spilled;
  into->blocks_spilled += from.blocks_spilled;
  into->bytes_read_back += from.bytes_read_back;
  into->blocks_read_back += from.blocks_read_back;
}

}  // namespace

MemoryCounters ShuffleMemoryCounters::Load() const {
  MemoryCounters c;
  c.bytes_buffered = bytes_buffered.load(std::memory_order_relaxed);
  c.rows_buffered = rows_buffered.load(std::memory_order_relaxed);
  c.exclusive_segments_in_use = exclusive_segments_in_use.load(std::memory_order_relaxed);
  c.floating_segments_in_use = floating_segments_in_use.load(std::memory_order_relaxed);
  c.spill_files_open = spill_files_open.load(std::memory_order_relaxed);
  c.blocked_nanos = blocked_nanos.load(std::memory_order_relaxed);
  c.blocked_waits = blocked_waits.load(std::memory_order_relaxed);
  c.bytes_spilled = bytes_spilled.load(std::memory_order_relaxed);
  c.blocks_spilled = blocks_spilled.load(std::memory_order_relaxed);
  c.bytes_read_back = bytes_read_back.load(std::memory_order_relaxed);
  c.blocks_read_back = blocks_read_back.load(std::memory_order_relaxed);
  return c;
}

std::shared_ptr<ShuffleMemoryCounters> MemoryMetrics::ForShuffle(const std::string& shuffle_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = shuffles_[shuffle_id];
  if (slot == nullptr) slot = std::make_shared<ShuffleMemoryCounters>();
  return slot;
}

void MemoryMetrics::Forget(const std::string& shuffle_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = shuffles_.find(shuffle_id);
  if (it == shuffles_.end()) return;
  Accumulate(it->second->Load(), &retired_);
  shuffles_.erase(it);
}

MemoryMetricsSnapshot MemoryMetrics::Snapshot(const BudgetedMemoryPool* pool) const {
  MemoryMetricsSnapshot snapshot;
  if (pool != nullptr) {
    snapshot.budget_bytes = pool->budget();
    snapshot.bytes_allocated = pool->bytes_allocated();
    snapshot.peak_bytes = pool->peak_bytes();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [id, counters] : shuffles_) {
    MemoryCounters c = counters->Load();
    Accumulate(c, &snapshot.agent);
    snapshot.shuffles.emplace(id, c);
  }
  Accumulate(retired_, &snapshot.agent);
  return snapshot;
}

}  // namespace sabot
