#include "sabot/memory/mapped_memory_pool.h"

#include <cstring>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

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

// Resident pages of [address, address + bytes), by mincore(2).
int64_t ResidentPages(const uint8_t* address, int64_t bytes) {
  const int64_t page = sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> pages(static_cast<size_t>((bytes + page - 1) / page));
  if (mincore(const_cast<uint8_t*>(address), static_cast<size_t>(bytes), pages.data()) != 0) {
    return -1;
  }
  int64_t resident = 0;
  for (unsigned char flags : pages) resident += flags & 1;
  return resident;
}

// A fresh mapping's requested pages are resident before anything writes them (faulted in by
// one call), the rest of its 64 KiB granule is not.
TEST(MappedMemoryPoolTest, AFreshMappingIsFaultedInUpToTheRequestedSize) {
  {
    // A kernel without MADV_POPULATE_WRITE (before 5.14) faults pages on first touch instead.
    void* probe = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(probe, MAP_FAILED);
    const bool supported = madvise(probe, 4096, MADV_POPULATE_WRITE) == 0;
    munmap(probe, 4096);
    if (!supported) GTEST_SKIP() << "madvise(MADV_POPULATE_WRITE) is not supported here";
  }
  ASSERT_OK_AND_ASSIGN(auto pool, MappedMemoryPool::Make(64 << 10, 0));
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t requested = (64 << 10) + 3 * page;  // a 128 KiB mapping
  ASSERT_OK_AND_ASSIGN(auto buffer, arrow::AllocateBuffer(requested, pool.get()));
  EXPECT_EQ(ResidentPages(buffer->data(), requested), requested / page);
  EXPECT_EQ(ResidentPages(buffer->data() + requested, (128 << 10) - requested), 0)
      << "pages past the requested size stay unbacked";
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
