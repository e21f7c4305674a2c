#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/common/thread_annotations.h"

namespace sabot {

// The agent's memory budget for the shuffle, as an arrow::MemoryPool. Every shuffle buffer
// (coalesced batches, sealed blocks, spill read-back) allocates from it, so the accounting, the
// spill trigger (BlockStore/SpillManager) and the metrics read the same numbers.
//
// The pool never exceeds its budget, so peak_bytes() <= budget() always. An allocation that
// does not fit first makes room: it calls the reclaimer (SetReclaimer; the agent's BlockStore,
// which spills stored blocks to disk) in the allocating thread, then, if the memory is still
// taken (a spill running in another thread, readers still holding batches), waits for frees up
// to the allocation wait (set_allocation_wait). Only then does it fail with OutOfMemory (and
// allocate nothing). Without a reclaimer and with a zero wait (the defaults) it fails at once.
// An allocation larger than the whole budget, or one made by a reclaimer itself, fails at once.
// Memory itself comes from `parent`.
//
// Lifetime: one per agent (process); it must outlive every buffer allocated from it and every
// component given a pointer to it. Thread safety: safe for concurrent use (lock-free counters
// on the fast path; a mutex only while an allocation waits for room).
class BudgetedMemoryPool : public arrow::MemoryPool {
 public:
  static constexpr int64_t kDefaultBudgetBytes = int64_t{256} << 20;

  // Frees memory so that an allocation of `bytes` may fit, typically by spilling; runs in the
  // allocating thread, which holds no lock of the pool. OK when it freed what it could (possibly
  // nothing); an error (a spill that failed) fails the allocation with it. Allocations it makes
  // from this pool never wait nor reclaim: they fit or fail at once.
  using Reclaimer = std::function<arrow::Status(int64_t bytes)>;

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
  // Allocations that did not fit at first and then did, after reclaiming or waiting.
  int64_t num_waited() const { return waited_.load(std::memory_order_relaxed); }

  // Sets (or, with nullptr, removes) the reclaimer. Whatever it touches must outlive the pool's
  // use of it: remove it before that goes away, while no allocation is in progress.
  void SetReclaimer(Reclaimer reclaimer);
  // How long an allocation that does not fit waits for room after reclaiming (default zero).
  void set_allocation_wait(std::chrono::milliseconds wait) {
    wait_ms_.store(wait.count(), std::memory_order_relaxed);
  }
  std::chrono::milliseconds allocation_wait() const {
    return std::chrono::milliseconds(wait_ms_.load(std::memory_order_relaxed));
  }

 private:
  BudgetedMemoryPool(int64_t budget_bytes, arrow::MemoryPool* parent);

  // Charges `bytes` to the budget, reclaiming and waiting as the class comment says, or returns
  // the error without charging anything.
  arrow::Status Charge(int64_t bytes, const char* what);
  // Charges `bytes` if they fit now.
  bool TryCharge(int64_t bytes);
  arrow::Status Refuse(int64_t bytes, const char* what, const std::string& why);
  void Uncharge(int64_t bytes);

  const int64_t budget_;
  arrow::MemoryPool* const parent_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> waited_{0};
  std::atomic<int64_t> wait_ms_{0};

  // Allocations waiting for room; frees notify room_ only while there are any.
  std::atomic<int32_t> waiters_{0};
  std::mutex mutex_;
  std::condition_variable room_;
  std::shared_ptr<const Reclaimer> reclaimer_ SABOT_GUARDED_BY(mutex_);
};

// Lets a task end its waits for budget memory when it is cancelled: while an instance lives in
// a thread, an allocation there from any BudgetedMemoryPool that waits for room gives up with
// Cancelled as soon as `*cancelled` is true (checked at least every 10 ms), instead of waiting
// out the allocation wait. Instances nest (the innermost flag counts); `cancelled` must outlive
// the instance. A writer task holds one while it writes (ShuffleWriter).
class AllocationWaitCancel {
 public:
  explicit AllocationWaitCancel(const std::atomic<bool>* cancelled);
  ~AllocationWaitCancel();
  AllocationWaitCancel(const AllocationWaitCancel&) = delete;
  AllocationWaitCancel& operator=(const AllocationWaitCancel&) = delete;

  // This thread's innermost flag, or null.
  static const std::atomic<bool>* Current();

 private:
  const std::atomic<bool>* previous_;
};

}  // namespace sabot
