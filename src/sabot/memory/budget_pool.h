#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>

namespace sabot {

// The agent's memory budget for the shuffle, as an arrow::MemoryPool. Every shuffle buffer
// (coalesced batches, sealed blocks, spill read-back) allocates from it, so the accounting, the
// spill trigger (BlockStore/SpillManager) and the metrics read the same numbers.
//
// An allocation that would take bytes_allocated() past budget() fails with OutOfMemory (and
// allocates nothing): the pool never exceeds its budget, so peak_bytes() <= budget() always.
// Memory itself comes from `parent`.
//
// Lifetime: one per agent (process); it must outlive every buffer allocated from it and every
// component given a pointer to it. Thread safety: safe for concurrent use (lock-free counters).
class BudgetedMemoryPool : public arrow::MemoryPool {
 public:
  static constexpr int64_t kDefaultBudgetBytes = int64_t{256} << 20;

  // Invalid when budget_bytes < 1. `parent` (not owned) must outlive the pool.
  static arrow::Result<std::unique_ptr<BudgetedMemoryPool>> Make(
      int64_t budget_bytes = kDefaultBudgetBytes,
      arrow::MemoryPool* parent = arrow::default_memory_pool());

  ~BudgetedMemoryPool() override;

  using arrow::MemoryPool::Allocate;
  using arrow::MemoryPool::Free;
  using arrow::MemoryPool::Reallocate;
  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;

  int64_t bytes_allocated() const override { return used_.load(std::memory_order_relaxed); }
  // The highest bytes_allocated() ever reached; never above budget().
  int64_t max_memory() const override { return peak_.load(std::memory_order_relaxed); }
  int64_t total_bytes_allocated() const override {
    return total_.load(std::memory_order_relaxed);
  }
  int64_t num_allocations() const override { return count_.load(std::memory_order_relaxed); }
  std::string backend_name() const override;

  int64_t budget() const { return budget_; }
  int64_t peak_bytes() const { return max_memory(); }
  int64_t available_bytes() const { return budget_ - bytes_allocated(); }
  // Allocations refused because they would have exceeded the budget.
  int64_t num_refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  BudgetedMemoryPool(int64_t budget_bytes, arrow::MemoryPool* parent);

  // Charges `bytes` to the budget, or returns OutOfMemory without charging anything.
  arrow::Status Charge(int64_t bytes, const char* what);
  void Uncharge(int64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  const int64_t budget_;
  arrow::MemoryPool* const parent_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> refused_{0};
};

}  // namespace sabot
