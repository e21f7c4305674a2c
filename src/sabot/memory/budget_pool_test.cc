#include "sabot/memory/budget_pool.h"

#include <atomic>
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
