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

arrow::Status BudgetedMemoryPool::Charge(int64_t bytes, const char* what) {
  int64_t used = used_.load(std::memory_order_relaxed);
  while (true) {
    if (bytes > budget_ - used) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return arrow::Status::OutOfMemory("shuffle memory budget exceeded: ", what, " ", bytes,
                                        " bytes with ", used, " of ", budget_,
                                        " bytes in use (raise the agent's memory budget, "
                                        "lower buffer targets, or spill earlier)");
    }
    if (used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed)) break;
  }
  int64_t now = used + bytes;
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return arrow::Status::OK();
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
