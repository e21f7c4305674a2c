#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sabot/common/thread_annotations.h"

namespace sabot {

class BudgetedMemoryPool;

// One set of memory figures, for one shuffle or for the whole agent. Gauges (what is held now)
// and counters (totals since start).
struct MemoryCounters {
  // Gauges.
  int64_t bytes_buffered = 0;  // in partition buffers and sealed blocks held in memory
  int64_t rows_buffered = 0;
  int64_t exclusive_segments_in_use = 0;
  int64_t floating_segments_in_use = 0;
  int64_t spill_files_open = 0;
  // Counters.
  int64_t blocked_nanos = 0;  // time producers spent waiting for network buffer segments
  int64_t blocked_waits = 0;  // how many times a producer had to wait
  int64_t bytes_spilled = 0;
  int64_t blocks_spilled = 0;
  int64_t bytes_read_back = 0;  // spilled bytes read back from disk
  int64_t blocks_read_back = 0;
};

// A consistent-enough copy of the memory figures: each number is read atomically, the set is not.
struct MemoryMetricsSnapshot {
  int64_t budget_bytes = 0;     // from the BudgetedMemoryPool, when given
  int64_t bytes_allocated = 0;  //   its bytes_allocated()
  int64_t peak_bytes = 0;       //   its peak
  MemoryCounters agent;         // all shuffles, including released ones for the counters
  std::map<std::string, MemoryCounters> shuffles;  // live (not released) shuffles
};

// The live figures of one shuffle, updated by the memory components. Thread-safe (atomics).
class ShuffleMemoryCounters {
 public:
  std::atomic<int64_t> bytes_buffered{0};
  std::atomic<int64_t> rows_buffered{0};
  std::atomic<int64_t> exclusive_segments_in_use{0};
  std::atomic<int64_t> floating_segments_in_use{0};
  std::atomic<int64_t> spill_files_open{0};
  std::atomic<int64_t> blocked_nanos{0};
  std::atomic<int64_t> blocked_waits{0};
  std::atomic<int64_t> bytes_spilled{0};
  std::atomic<int64_t> blocks_spilled{0};
  std::atomic<int64_t> bytes_read_back{0};
  std::atomic<int64_t> blocks_read_back{0};

  MemoryCounters Load() const;
};

// The memory figures of one agent, per shuffle. Components (PartitionBuffer, NetworkBufferPool,
// BlockStore) update the counters of their shuffle; later layers read Snapshot().
//
// Lifetime: one per agent, outliving the components that update it. Counters handed out by
// ForShuffle stay valid while referenced, even after Forget. Thread-safe.
class MemoryMetrics {
 public:
  // The counters of `shuffle_id`, created on first use.
  std::shared_ptr<ShuffleMemoryCounters> ForShuffle(const std::string& shuffle_id)
      SABOT_EXCLUDES(mutex_);
  // Drops the shuffle from the per-shuffle view (on release); its counters stay in the agent's
  // totals.
  void Forget(const std::string& shuffle_id) SABOT_EXCLUDES(mutex_);

  // `pool`, when given, fills in the budget figures.
  MemoryMetricsSnapshot Snapshot(const BudgetedMemoryPool* pool = nullptr) const
      SABOT_EXCLUDES(mutex_);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<ShuffleMemoryCounters>> shuffles_ SABOT_GUARDED_BY(mutex_);
  // Figures of forgotten shuffles, as they were when forgotten.
  MemoryCounters retired_ SABOT_GUARDED_BY(mutex_);
};

}  // namespace sabot
