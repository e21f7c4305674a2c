#include "sabot/memory/mapped_memory_pool.h"

#include <cstring>

#include <gtest/gtest.h>

#include <arrow/buffer.h>

#include "sabot/memory/budget_pool.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

TEST(MappedMemoryPoolTest, LargeAllocationsAreMappedSmallOnesGoToTheParent) {
  ASSERT_OK_AND_ASSIGN(auto pool, MappedMemoryPool::Make(64 << 10, 1 << 20));
  arrow::MemoryPool* parent = arrow::default_memory_pool();
  const int64_t parent_before = parent->bytes_allocated();
  ASSERT_OK_AND_ASSIGN(auto small, arrow::AllocateBuffer(1024, pool.get()));
  EXPECT_EQ(parent->bytes_allocated() - parent_before, 1024);
  ASSERT_OK_AND_ASSIGN(auto large, arrow::AllocateBuffer(300 << 10, pool.get()));
  EXPECT_EQ(parent->bytes_allocated() - parent_before, 1024) << "a large buffer is mapped";
  EXPECT_EQ(pool->bytes_allocated(), 1024 + (300 << 10));
  std::memset(large->mutable_data(), 7, large->size());
  large.reset();
  small.reset();
  EXPECT_EQ(pool->bytes_allocated(), 0);
  EXPECT_EQ(parent->bytes_allocated(), parent_before);
}

TEST(MappedMemoryPoolTest, FreedMappingsAreReusedUpToTheCacheAndNoMore) {
  ASSERT_OK_AND_ASSIGN(auto pool, MappedMemoryPool::Make(64 << 10, 512 << 10));
  std::vector<std::unique_ptr<arrow::Buffer>> buffers;
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(auto buffer, arrow::AllocateBuffer(256 << 10, pool.get()));
    buffers.push_back(std::move(buffer));
  }
  const uint8_t* first = buffers[0]->data();
  buffers.clear();
  EXPECT_EQ(pool->cached_bytes(), 512 << 10) << "two kept, two returned to the system";
  ASSERT_OK_AND_ASSIGN(auto again, arrow::AllocateBuffer(256 << 10, pool.get()));
  EXPECT_EQ(pool->cached_bytes(), 256 << 10);
  (void)first;
}

TEST(MappedMemoryPoolTest, ReallocateKeepsContentsAcrossTheThreshold) {
  ASSERT_OK_AND_ASSIGN(auto pool, MappedMemoryPool::Make(64 << 10, 1 << 20));
  ASSERT_OK_AND_ASSIGN(auto buffer, arrow::AllocateResizableBuffer(1000, pool.get()));
  for (int i = 0; i < 1000; ++i) buffer->mutable_data()[i] = static_cast<uint8_t>(i);
  for (int64_t size : {int64_t{200} << 10, int64_t{210} << 10, int64_t{1} << 20, int64_t{500}}) {
    ASSERT_OK(buffer->Resize(size, /*shrink_to_fit=*/true));
    for (int i = 0; i < 500; ++i) ASSERT_EQ(buffer->data()[i], static_cast<uint8_t>(i));
  }
  buffer.reset();
  EXPECT_EQ(pool->bytes_allocated(), 0);
}

// The shuffle's budget sits on it: budget accounting and mapping agree.
TEST(MappedMemoryPoolTest, BacksABudget) {
  ASSERT_OK_AND_ASSIGN(auto mapped, MappedMemoryPool::Make());
  ASSERT_OK_AND_ASSIGN(auto budget, BudgetedMemoryPool::Make(1 << 20, mapped.get()));
  ASSERT_OK_AND_ASSIGN(auto a, arrow::AllocateBuffer(600 << 10, budget.get()));
  ASSERT_RAISES_WITH(OutOfMemory, "budget exceeded",
                     arrow::AllocateBuffer(600 << 10, budget.get()).status());
  EXPECT_EQ(mapped->bytes_allocated(), 600 << 10);
  a.reset();
  EXPECT_EQ(mapped->bytes_allocated(), 0);
}

}  // namespace
}  // namespace sabot
