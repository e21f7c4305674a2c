#include "sabot/transport/receive_buffer_pool.h"

#include <cstring>
#include <thread>
#include <vector>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/array/builder_primitive.h>
#include <gtest/gtest.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

TEST(ReceiveBufferPoolTest, ReusesAFreedBufferOfTheSameSizeClass) {
  arrow::ProxyMemoryPool parent(arrow::default_memory_pool());
  auto pool = ReceiveBufferPool::Make(&parent, 1 << 20);
  uint8_t* first = nullptr;
  ASSERT_OK(pool->Allocate(100'000, 64, &first));
  std::memset(first, 7, 100'000);
  EXPECT_EQ(parent.bytes_allocated(), 100'000 / ReceiveBufferPool::kRecycleGranularity *
                                              ReceiveBufferPool::kRecycleGranularity +
                                          ReceiveBufferPool::kRecycleGranularity);
  pool->Free(first, 100'000, 64);
  EXPECT_GT(pool->retained_bytes(), 0);
  // Another size in the same class gets the same memory back; the parent is not asked.
  const int64_t parent_allocations = parent.num_allocations();
  uint8_t* second = nullptr;
  ASSERT_OK(pool->Allocate(100'100, 64, &second));
  EXPECT_EQ(second, first);
  EXPECT_EQ(parent.num_allocations(), parent_allocations);
  EXPECT_EQ(pool->reused_allocations(), 1);
  EXPECT_EQ(pool->retained_bytes(), 0);
  // A different alignment or class is a different buffer.
  uint8_t* other = nullptr;
  ASSERT_OK(pool->Allocate(100'100, 128, &other));
  EXPECT_NE(other, second);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(other) % 128, 0u);
  pool->Free(other, 100'100, 128);
  pool->Free(second, 100'100, 64);
  EXPECT_EQ(pool->bytes_allocated(), pool->retained_bytes());
  pool->ReleaseUnused();
  EXPECT_EQ(pool->retained_bytes(), 0);
  EXPECT_EQ(parent.bytes_allocated(), 0);
}

TEST(ReceiveBufferPoolTest, RetainsNoMoreThanItsLimit) {
  arrow::ProxyMemoryPool parent(arrow::default_memory_pool());
  const int64_t limit = 3 * 64 * 1024;
  auto pool = ReceiveBufferPool::Make(&parent, limit);
  std::vector<uint8_t*> buffers(10);
  for (auto& buffer : buffers) ASSERT_OK(pool->Allocate(64 * 1024, 64, &buffer));
  EXPECT_EQ(parent.bytes_allocated(), 10 * 64 * 1024);
  for (auto* buffer : buffers) pool->Free(buffer, 64 * 1024, 64);
  EXPECT_EQ(pool->retained_bytes(), limit);
  EXPECT_EQ(parent.bytes_allocated(), limit);
  pool.reset();  // destruction gives the retained buffers back
  EXPECT_EQ(parent.bytes_allocated(), 0);
}

TEST(ReceiveBufferPoolTest, SmallAllocationsPassThrough) {
  arrow::ProxyMemoryPool parent(arrow::default_memory_pool());
  auto pool = ReceiveBufferPool::Make(&parent, 1 << 20);
  uint8_t* small = nullptr;
  ASSERT_OK(pool->Allocate(100, 64, &small));
  EXPECT_EQ(parent.bytes_allocated(), 100);
  pool->Free(small, 100, 64);
  EXPECT_EQ(pool->retained_bytes(), 0);
  EXPECT_EQ(parent.bytes_allocated(), 0);
}

TEST(ReceiveBufferPoolTest, ReallocateKeepsTheBytes) {
  arrow::ProxyMemoryPool parent(arrow::default_memory_pool());
  auto pool = ReceiveBufferPool::Make(&parent, 1 << 20);
  uint8_t* data = nullptr;
  ASSERT_OK(pool->Allocate(20'000, 64, &data));
  for (int i = 0; i < 20'000; ++i) data[i] = static_cast<uint8_t>(i * 31);
  ASSERT_OK(pool->Reallocate(20'000, 200'000, 64, &data));
  for (int i = 0; i < 20'000; ++i) ASSERT_EQ(data[i], static_cast<uint8_t>(i * 31)) << i;
  ASSERT_OK(pool->Reallocate(200'000, 10, 64, &data));
  EXPECT_EQ(data[9], static_cast<uint8_t>(9 * 31));
  pool->Free(data, 10, 64);
  pool->ReleaseUnused();
  EXPECT_EQ(parent.bytes_allocated(), 0);
}

// The IPC reader's alignment copies (what a Flight reader makes of a misaligned body) come from
// the pool and are reused once their batch is gone; the rows read are the rows written.
TEST(ReceiveBufferPoolTest, ServesTheIpcReadersAlignmentCopies) {
  arrow::ProxyMemoryPool parent(arrow::default_memory_pool());
  auto pool = ReceiveBufferPool::Make(&parent, 8 << 20);
  arrow::Int64Builder builder;
  for (int64_t i = 0; i < 50'000; ++i) ASSERT_OK(builder.Append(i * 7 - 3));
  ASSERT_OK_AND_ASSIGN(auto column, builder.Finish());
  auto batch = arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::int64())}),
                                        column->length(), {column});
  ASSERT_OK_AND_ASSIGN(auto sink, arrow::io::BufferOutputStream::Create());
  ASSERT_OK_AND_ASSIGN(auto writer, arrow::ipc::MakeStreamWriter(sink, batch->schema()));
  ASSERT_OK(writer->WriteRecordBatch(*batch));
  ASSERT_OK(writer->Close());
  ASSERT_OK_AND_ASSIGN(auto stream, sink->Finish());
  // The stream at an odd address: every buffer the reader slices from it is misaligned.
  ASSERT_OK_AND_ASSIGN(auto shifted, arrow::AllocateBuffer(stream->size() + 1));
  std::memcpy(shifted->mutable_data() + 1, stream->data(), static_cast<size_t>(stream->size()));
  auto misaligned = arrow::SliceBuffer(std::shared_ptr<arrow::Buffer>(std::move(shifted)), 1);
  auto options = arrow::ipc::IpcReadOptions::Defaults();
  options.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  options.memory_pool = pool.get();
  for (int round = 0; round < 3; ++round) {
    auto input = std::make_shared<arrow::io::BufferReader>(misaligned);
    ASSERT_OK_AND_ASSIGN(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input, options));
    ASSERT_OK_AND_ASSIGN(auto read, reader->Next());
    ASSERT_NE(read, nullptr);
    ASSERT_BATCHES_EQUAL(*batch, *read);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(read->column(0)->data()->buffers[1]->data()) % 8, 0u);
    EXPECT_GT(pool->bytes_allocated(), pool->retained_bytes());
  }
  EXPECT_GE(pool->num_allocations(), 3);
  EXPECT_GE(pool->reused_allocations(), 2);
  pool.reset();
  EXPECT_EQ(parent.bytes_allocated(), 0);
}

TEST(ReceiveBufferPoolTest, SafeForConcurrentUse) {
  arrow::ProxyMemoryPool parent(arrow::default_memory_pool());
  auto pool = ReceiveBufferPool::Make(&parent, 1 << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const int64_t size = (1 + (i + t) % 5) * 20'000;
        uint8_t* data = nullptr;
        ASSERT_OK(pool->Allocate(size, 64, &data));
        std::memset(data, t, static_cast<size_t>(size));
        pool->Free(data, size, 64);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(pool->bytes_allocated(), pool->retained_bytes());
  EXPECT_LE(pool->retained_bytes(), 1 << 20);
  pool.reset();
  EXPECT_EQ(parent.bytes_allocated(), 0);
}

}  // namespace
}  // namespace sabot
