#include "sabot/memory/budget_pool.h"

#include "sabot/common/logging.h"

namespace sabot {

arrow::Result<std::unique_ptr<BudgetedMemoryPool>> BudgetedMemoryPool::Make(
    int64_t budget_bytes, arrow::MemoryPool* parent) {
  if (budget_bytes < 1) {
    return arrow::Status::Invalid("memory budget must be at least 1 byte, got ", budget_bytes);
  }
  if (parent == nullptr) return arrow::Status::Invalid("memory budget needs a parent pool");
  return std::unique_ptr<BudgetedMemoryPool>(new BudgetedMemoryPool(budget_bytes, parent));
}

BudgetedMemoryPool::BudgetedMemoryPool(int64_t budget_bytes, arrow::MemoryPool* parent)
    : budget_(budget_bytes), parent_(parent) {}

BudgetedMemoryPool::~BudgetedMemoryPool() {
  int64_t leaked = bytes_allocated();
  if (leaked != 0) {
    SABOT_LOG(kError) << "shuffle memory budget destroyed with " << leaked
                      << " bytes still allocated from it";
  }
}

std::string BudgetedMemoryPool::backend_name() const {
  return "sabot-budget(" + parent_->backend_name() + ")";
}

namespace {

// Set while this thread runs a reclaimer: its own allocations neither reclaim nor wait.
thread_local bool t_reclaiming = false;
// The innermost AllocationWaitCancel's flag of this thread.
thread_local const std::atomic<bool>* t_wait_cancelled = nullptr;

}  // namespace

AllocationWaitCancel::AllocationWaitCancel(const std::atomic<bool>* cancelled)
    : previous_(t_wait_cancelled) {
  t_wait_cancelled = cancelled;
}

AllocationWaitCancel::~AllocationWaitCancel() { t_wait_cancelled = previous_; }

const std::atomic<bool>* AllocationWaitCancel::Current() { return t_wait_cancelled; }

void BudgetedMemoryPool::SetReclaimer(Reclaimer reclaimer) {
  std::shared_ptr<const Reclaimer> made;
  if (reclaimer) made = std::make_shared<const Reclaimer>(std::move(reclaimer));
  std::lock_guard<std::mutex> lock(mutex_);
  reclaimer_ = std::move(made);
}

bool BudgetedMemoryPool::TryCharge(int64_t bytes) {
  int64_t used = used_.load(std::memory_order_relaxed);
  while (true) {
    if (bytes > budget_ - used) return false;
    if (used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed)) break;
  }
  int64_t now = used + bytes;
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return true;
}

void BudgetedMemoryPool::Uncharge(int64_t bytes) {
  used_.fetch_sub(bytes, std::memory_order_relaxed);
  if (waiters_.load(std::memory_order_acquire) > 0) {
    // Taking the lock orders this notification after a waiter's last check of the budget.
    { std::lock_guard<std::mutex> lock(mutex_); }
    room_.notify_all();
  }
}

arrow::Status BudgetedMemoryPool::Refuse(int64_t bytes, const char* what, const std::string& why) {
  refused_.fetch_add(1, std::memory_order_relaxed);
  return arrow::Status::OutOfMemory("shuffle memory budget exceeded: ", what, " ", bytes,
                                    " bytes with ", bytes_allocated(), " of ", budget_,
                                    " bytes in use", why,
                                    " (raise the agent's memory budget, lower buffer targets, "
                                    "or spill earlier)");
}

arrow::Status BudgetedMemoryPool::Charge(int64_t bytes, const char* what) {
  if (TryCharge(bytes)) return arrow::Status::OK();
  if (bytes > budget_) return Refuse(bytes, what, ": more than the whole budget");
  std::shared_ptr<const Reclaimer> reclaimer;
  if (!t_reclaiming) {
    std::lock_guard<std::mutex> lock(mutex_);
    reclaimer = reclaimer_;
  }
  const std::chrono::milliseconds wait = allocation_wait();
  if (reclaimer == nullptr && (wait.count() <= 0 || t_reclaiming)) {
    return Refuse(bytes, what, "");
  }
  // Reclaim (spill) in this thread; then wait for frees (a spill in another thread, readers
  // letting go of batches), reclaiming again after each, until it fits or the wait is over.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  waiters_.fetch_add(1, std::memory_order_acq_rel);
  arrow::Status status;
  while (true) {
    if (reclaimer != nullptr) {
      t_reclaiming = true;
      status = (*reclaimer)(bytes);
      t_reclaiming = false;
      if (!status.ok()) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    if (TryCharge(bytes)) break;
    std::unique_lock<std::mutex> lock(mutex_);
    if (TryCharge(bytes)) break;
    if (t_wait_cancelled != nullptr && t_wait_cancelled->load(std::memory_order_acquire)) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      status = arrow::Status::Cancelled("waiting for ", bytes, " bytes of the shuffle memory ",
                                        "budget (", bytes_allocated(), " of ", budget_,
                                        " in use) was cancelled");
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      status = Refuse(bytes, what, ", after spilling what could be spilled and waiting " +
                                       std::to_string(wait.count()) + " ms for memory to be freed");
      break;
    }
    // Bounded, so a spill that became possible meanwhile (a block stored) is tried again.
    room_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                  std::chrono::milliseconds(10)));
  }
  waiters_.fetch_sub(1, std::memory_order_acq_rel);
  if (status.ok()) waited_.fetch_add(1, std::memory_order_relaxed);
  return status;
}

arrow::Status BudgetedMemoryPool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
  if (size < 0) return arrow::Status::Invalid("negative allocation size ", size);
  ARROW_RETURN_NOT_OK(Charge(size, "allocating"));
  arrow::Status st = parent_->Allocate(size, alignment, out);
  if (!st.ok()) {
    Uncharge(size);
    return st;
  }
  total_.fetch_add(size, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  return arrow::Status::OK();
}

arrow::Status BudgetedMemoryPool::Reallocate(int64_t old_size, int64_t new_size,
                                             int64_t alignment, uint8_t** ptr) {
  if (new_size < 0) return arrow::Status::Invalid("negative allocation size ", new_size);
  int64_t growth = new_size - old_size;
  if (growth > 0) ARROW_RETURN_NOT_OK(Charge(growth, "growing a buffer by"));
  arrow::Status st = parent_->Reallocate(old_size, new_size, alignment, ptr);
  if (!st.ok()) {
    if (growth > 0) Uncharge(growth);
    return st;
  }
  if (growth < 0) Uncharge(-growth);
  if (growth > 0) total_.fetch_add(growth, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  return arrow::Status::OK();
}

void BudgetedMemoryPool::Free(uint8_t* buffer, int64_t size, int64_t alignment) {
  parent_->Free(buffer, size, alignment);
  Uncharge(size);
}

}  // namespace sabot
