#include "sabot/memory/budget_pool.h"

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/buffer.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

TEST(BudgetedMemoryPoolTest, RejectsBadBudget) {
  ASSERT_RAISES_WITH(Invalid, "at least 1 byte", BudgetedMemoryPool::Make(0).status());
}

TEST(BudgetedMemoryPoolTest, AllocatesUpToTheBudgetAndNoFurther) {
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(1 << 20));
  EXPECT_EQ(pool->budget(), 1 << 20);
  ASSERT_OK_AND_ASSIGN(auto a, arrow::AllocateBuffer(600 << 10, pool.get()));
  EXPECT_EQ(pool->bytes_allocated(), 600 << 10);
  ASSERT_RAISES_WITH(OutOfMemory, "shuffle memory budget exceeded",
                     arrow::AllocateBuffer(500 << 10, pool.get()).status());
  EXPECT_EQ(pool->bytes_allocated(), 600 << 10) << "a refused allocation charges nothing";
  EXPECT_EQ(pool->num_refused(), 1);
  ASSERT_OK_AND_ASSIGN(auto b, arrow::AllocateBuffer(424 << 10, pool.get()));
  EXPECT_EQ(pool->bytes_allocated(), 1 << 20);
  EXPECT_EQ(pool->available_bytes(), 0);
  a.reset();
  EXPECT_EQ(pool->bytes_allocated(), 424 << 10);
  EXPECT_EQ(pool->peak_bytes(), 1 << 20);
  b.reset();
  EXPECT_EQ(pool->bytes_allocated(), 0);
}

TEST(BudgetedMemoryPoolTest, GrowingPastTheBudgetFailsAndKeepsTheBuffer) {
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(1 << 20));
  ASSERT_OK_AND_ASSIGN(auto buffer, arrow::AllocateResizableBuffer(1000, pool.get()));
  buffer->mutable_data()[0] = 42;
  ASSERT_RAISES_WITH(OutOfMemory, "growing a buffer", buffer->Resize(2 << 20));
  EXPECT_EQ(buffer->data()[0], 42);
  ASSERT_OK(buffer->Resize(200 << 10));
  EXPECT_GE(pool->bytes_allocated(), 200 << 10);
  ASSERT_OK(buffer->Resize(10, /*shrink_to_fit=*/true));
  EXPECT_LT(pool->bytes_allocated(), 1000);
  EXPECT_LE(pool->peak_bytes(), pool->budget());
}

TEST(BudgetedMemoryPoolTest, ConcurrentAllocationsNeverExceedTheBudget) {
  const int64_t budget = 1 << 20;
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(budget));
  std::atomic<int64_t> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::unique_ptr<arrow::Buffer>> held;
      for (int i = 0; i < 2000; ++i) {
        auto r = arrow::AllocateBuffer(rng() % (256 << 10), pool.get());
        if (r.ok()) {
          held.push_back(std::move(*r));
        } else {
          ++refused;
        }
        if (held.size() > 6 || (!held.empty() && rng() % 2)) held.erase(held.begin());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(pool->peak_bytes(), budget);
  EXPECT_EQ(pool->bytes_allocated(), 0);
  EXPECT_GT(refused.load(), 0) << "the test should push against the budget";
  EXPECT_EQ(pool->num_refused(), refused.load());
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

// An allocation that does not fit asks the reclaimer for room first, in its own thread.
TEST(BudgetedMemoryPoolTest, AnAllocationThatDoesNotFitReclaimsFirst) {
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(1 << 20));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<arrow::Buffer> held,
                       arrow::AllocateBuffer(900 << 10, pool.get()));
  std::vector<int64_t> asked;
  pool->SetReclaimer([&](int64_t bytes) {
    asked.push_back(bytes);
    // What a reclaimer allocates neither recurses nor waits: here it does not fit, so it fails.
    EXPECT_TRUE(arrow::AllocateBuffer(500 << 10, pool.get()).status().IsOutOfMemory());
    held.reset();  // "spilled"
    return arrow::Status::OK();
  });
  ASSERT_OK_AND_ASSIGN(auto buffer, arrow::AllocateBuffer(500 << 10, pool.get()));
  EXPECT_EQ(asked, (std::vector<int64_t>{500 << 10}));
  EXPECT_EQ(pool->bytes_allocated(), 500 << 10);
  EXPECT_EQ(pool->num_waited(), 1);
  EXPECT_LE(pool->peak_bytes(), pool->budget());
  pool->SetReclaimer(nullptr);
}

// A reclaimer that fails (a spill that hit a full disk) fails the allocation with its error.
TEST(BudgetedMemoryPoolTest, AFailedReclaimFailsTheAllocationWithItsCause) {
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(1 << 20));
  ASSERT_OK_AND_ASSIGN(auto held, arrow::AllocateBuffer(900 << 10, pool.get()));
  pool->SetReclaimer([](int64_t) { return arrow::Status::IOError("No space left on device"); });
  pool->set_allocation_wait(std::chrono::seconds(10));
  ASSERT_RAISES_WITH(IOError, "No space left",
                     arrow::AllocateBuffer(500 << 10, pool.get()).status());
  EXPECT_EQ(pool->bytes_allocated(), 900 << 10);
  pool->SetReclaimer(nullptr);
}

// With nothing to reclaim, an allocation waits for another thread to free memory, then fits.
TEST(BudgetedMemoryPoolTest, AnAllocationWaitsForMemoryFreedElsewhere) {
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(1 << 20));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<arrow::Buffer> held,
                       arrow::AllocateBuffer(900 << 10, pool.get()));
  std::atomic<int> reclaims{0};
  pool->SetReclaimer([&](int64_t) {
    reclaims.fetch_add(1);
    return arrow::Status::OK();  // nothing to spill
  });
  pool->set_allocation_wait(std::chrono::seconds(60));
  std::atomic<bool> allocated{false};
  std::thread waiter([&] {
    auto buffer = arrow::AllocateBuffer(500 << 10, pool.get());
    ASSERT_OK(buffer.status());
    allocated.store(true);
  });
  // The waiter cannot get its memory before the held buffer is freed; it must not give up.
  while (reclaims.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(allocated.load());
  held.reset();
  waiter.join();
  EXPECT_TRUE(allocated.load());
  EXPECT_LE(pool->peak_bytes(), pool->budget());
  pool->SetReclaimer(nullptr);
}

// The wait is bounded: past it, OutOfMemory says what was tried. More than the whole budget
// fails at once, without reclaiming or waiting.
TEST(BudgetedMemoryPoolTest, TheWaitIsBoundedAndHopelessAllocationsFailAtOnce) {
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(1 << 20));
  ASSERT_OK_AND_ASSIGN(auto held, arrow::AllocateBuffer(900 << 10, pool.get()));
  int reclaims = 0;
  pool->SetReclaimer([&](int64_t) {
    ++reclaims;
    return arrow::Status::OK();
  });
  pool->set_allocation_wait(std::chrono::milliseconds(50));
  ASSERT_RAISES_WITH(OutOfMemory, "waiting 50 ms",
                     arrow::AllocateBuffer(500 << 10, pool.get()).status());
  EXPECT_GE(reclaims, 1);
  const int before = reclaims;
  ASSERT_RAISES_WITH(OutOfMemory, "more than the whole budget",
                     arrow::AllocateBuffer(2 << 20, pool.get()).status());
  EXPECT_EQ(reclaims, before);
  EXPECT_EQ(pool->bytes_allocated(), 900 << 10);
  pool->SetReclaimer(nullptr);
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

// A cancelled task stops waiting for memory at once instead of waiting out the allocation wait.
TEST(BudgetedMemoryPoolTest, CancellingATaskEndsItsWaitForMemory) {
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(1 << 20));
  ASSERT_OK_AND_ASSIGN(auto held, arrow::AllocateBuffer(900 << 10, pool.get()));
  std::atomic<int> reclaims{0};
  pool->SetReclaimer([&](int64_t) {
    reclaims.fetch_add(1);
    return arrow::Status::OK();
  });
  pool->set_allocation_wait(std::chrono::minutes(10));
  std::atomic<bool> cancelled{false};
  arrow::Status status;
  std::thread task([&] {
    AllocationWaitCancel scope(&cancelled);
    EXPECT_EQ(AllocationWaitCancel::Current(), &cancelled);
    status = arrow::AllocateBuffer(500 << 10, pool.get()).status();
  });
  while (reclaims.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  cancelled.store(true);
  task.join();  // within ~10 ms, not 10 minutes
  ASSERT_RAISES_WITH(Cancelled, "was cancelled", status);
  EXPECT_EQ(AllocationWaitCancel::Current(), nullptr);
  EXPECT_EQ(pool->bytes_allocated(), 900 << 10);
  pool->SetReclaimer(nullptr);
}

}  // namespace
}  // namespace sabot
