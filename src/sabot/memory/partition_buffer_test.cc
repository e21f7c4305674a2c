#include "sabot/memory/partition_buffer.h"

#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/memory/budget_pool.h"
#include "sabot/memory/test_batches.h"
#include "sabot/memory/test_budget.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using testing::TestSchemaKind;
using Clock = PartitionBuffer::Clock;

class PartitionBufferTest : public ::testing::Test {
 protected:
  // Under SABOT_TEST_TINY_BUDGET the buffers work within a 4 MiB budget.
  void SetUp() override {
    pool_ = BudgetedMemoryPool::Make(testing::TestBudgetBytes(64 << 20)).ValueOrDie();
  }

  std::unique_ptr<PartitionBuffer> MakeBuffer(TestSchemaKind kind, PartitionBufferOptions options) {
    auto sink = [this](SealedBlock block) {
      blocks_.push_back(std::move(block));
      return arrow::Status::OK();
    };
    return PartitionBuffer::Make(StreamKey{"shuffle-1", 3, 1, 0}, testing::TestSchema(kind),
                                 options, pool_.get(), sink, &metrics_)
        .ValueOrDie();
  }

  // Decodes every sealed block, in order.
  std::vector<std::shared_ptr<arrow::RecordBatch>> Decoded(TestSchemaKind kind) {
    auto decoder = BlockDecoder::Make(testing::TestSchema(kind), pool_.get()).ValueOrDie();
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    for (const auto& b : blocks_) out.push_back(decoder->Decode(b).ValueOrDie());
    return out;
  }

  std::unique_ptr<BudgetedMemoryPool> pool_;
  MemoryMetrics metrics_;
  std::vector<SealedBlock> blocks_;
};

TEST_F(PartitionBufferTest, CoalescesSlicesUpToTheRowTargetKeepingOrder) {
  for (auto kind : testing::AllTestSchemaKinds()) {
    blocks_.clear();
    PartitionBufferOptions options;
    options.target_rows = 100;
    options.target_bytes = 1 << 30;
    options.buffer_timeout = std::chrono::nanoseconds(0);
    auto buffer = MakeBuffer(kind, options);
    std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
    int64_t row = 0;
    const auto now = Clock::now();
    for (int64_t rows : {30, 30, 30, 30, 250, 7, 0, 1}) {
      ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, row, rows));
      row += rows;
      inputs.push_back(slice);
      ASSERT_OK(buffer->Append(slice, now));
    }
    // 378 rows: blocks of 100, 100, 100, then 78 at Finish.
    EXPECT_EQ(blocks_.size(), 3u) << testing::ToString(kind);
    EXPECT_EQ(buffer->buffered_rows(), 78);
    ASSERT_OK(buffer->Finish());
    ASSERT_EQ(blocks_.size(), 4u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(blocks_[i].num_rows, 100);
    EXPECT_EQ(blocks_[3].num_rows, 78);
    ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
    ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(Decoded(kind)));
    ASSERT_BATCHES_EQUAL(*expected, *actual);
    ASSERT_RAISES_WITH(Invalid, "after Finish", buffer->Append(inputs[0], now));
  }
}

TEST_F(PartitionBufferTest, SplitsLargeSlicesToStayNearTheByteTarget) {
  auto kind = TestSchemaKind::kPrimitive;
  PartitionBufferOptions options;
  options.target_rows = 1 << 30;
  options.target_bytes = 64 * 1024;
  auto buffer = MakeBuffer(kind, options);
  ASSERT_OK_AND_ASSIGN(auto big, testing::MakeTestBatch(kind, 0, 100000));  // ~1.7 MB
  ASSERT_OK(buffer->Append(big));
  ASSERT_OK(buffer->Finish());
  ASSERT_GT(blocks_.size(), 10u);
  for (const auto& b : blocks_) {
    EXPECT_LE(b.ipc_bytes->size(), 64 * 1024 + 4096) << "block near the byte target";
  }
  ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(Decoded(kind)));
  ASSERT_BATCHES_EQUAL(*big, *actual);
  EXPECT_EQ(buffer->rows_sealed(), 100000);
}

TEST_F(PartitionBufferTest, FlushSealsWhatIsBuffered) {
  auto kind = TestSchemaKind::kStrings;
  PartitionBufferOptions options;
  options.buffer_timeout = std::chrono::nanoseconds(0);
  auto buffer = MakeBuffer(kind, options);
  ASSERT_OK(buffer->Flush());
  EXPECT_TRUE(blocks_.empty()) << "nothing buffered, nothing sealed";
  ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, 0, 10));
  ASSERT_OK(buffer->Append(slice));
  EXPECT_TRUE(blocks_.empty());
  auto snapshot = metrics_.Snapshot();
  EXPECT_EQ(snapshot.shuffles["shuffle-1"].rows_buffered, 10);
  EXPECT_GT(snapshot.shuffles["shuffle-1"].bytes_buffered, 0);
  ASSERT_OK(buffer->Flush());
  ASSERT_EQ(blocks_.size(), 1u);
  EXPECT_EQ(blocks_[0].num_rows, 10);
  snapshot = metrics_.Snapshot();
  EXPECT_EQ(snapshot.shuffles["shuffle-1"].rows_buffered, 0);
  EXPECT_EQ(snapshot.shuffles["shuffle-1"].bytes_buffered, 0);
}

TEST_F(PartitionBufferTest, BufferTimeoutSealsOldRows) {
  auto kind = TestSchemaKind::kPrimitive;
  PartitionBufferOptions options;
  options.buffer_timeout = std::chrono::milliseconds(5);
  auto buffer = MakeBuffer(kind, options);
  const auto t0 = Clock::now();
  EXPECT_FALSE(buffer->flush_deadline().has_value());
  ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, 0, 10));
  ASSERT_OK(buffer->Append(slice, t0));
  ASSERT_TRUE(buffer->flush_deadline().has_value());
  EXPECT_EQ(*buffer->flush_deadline(), t0 + std::chrono::milliseconds(5));
  ASSERT_OK(buffer->FlushIfDue(t0 + std::chrono::milliseconds(4)));
  EXPECT_TRUE(blocks_.empty());
  // A later Append past the deadline seals both slices together.
  ASSERT_OK(buffer->Append(slice, t0 + std::chrono::milliseconds(6)));
  ASSERT_EQ(blocks_.size(), 1u);
  EXPECT_EQ(blocks_[0].num_rows, 20);
  ASSERT_OK(buffer->Append(slice, t0 + std::chrono::milliseconds(7)));
  ASSERT_OK(buffer->FlushIfDue(t0 + std::chrono::milliseconds(12)));
  ASSERT_EQ(blocks_.size(), 2u);
  EXPECT_FALSE(buffer->flush_deadline().has_value());
}

TEST_F(PartitionBufferTest, InProcessBlocksStayUnencoded) {
  auto kind = TestSchemaKind::kDictionary;
  PartitionBufferOptions options;
  options.encode = false;
  options.target_rows = 50;
  auto buffer = MakeBuffer(kind, options);
  std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, i * 20, 20));
    inputs.push_back(slice);
    ASSERT_OK(buffer->Append(slice));
  }
  ASSERT_OK(buffer->Finish());
  ASSERT_EQ(blocks_.size(), 2u);
  for (const auto& b : blocks_) {
    EXPECT_FALSE(b.encoded());
    ASSERT_NE(b.batch, nullptr);
  }
  ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
  ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(Decoded(kind)));
  ASSERT_BATCHES_EQUAL(*expected, *actual);
}

TEST_F(PartitionBufferTest, CompressedBlocksRoundTrip) {
  for (auto c : {arrow::Compression::LZ4_FRAME, arrow::Compression::ZSTD}) {
    blocks_.clear();
    auto kind = TestSchemaKind::kEverything;
    PartitionBufferOptions options;
    options.codec.compression = c;
    options.target_rows = 300;
    auto buffer = MakeBuffer(kind, options);
    std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
    for (int i = 0; i < 5; ++i) {
      ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, i * 111, 111));
      inputs.push_back(slice);
      ASSERT_OK(buffer->Append(slice));
    }
    ASSERT_OK(buffer->Finish());
    ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
    ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(Decoded(kind)));
    ASSERT_BATCHES_EQUAL(*expected, *actual);
  }
}

TEST_F(PartitionBufferTest, SinkErrorsReachTheWriterWithContext) {
  auto kind = TestSchemaKind::kPrimitive;
  PartitionBufferOptions options;
  options.target_rows = 10;
  auto failing = [](SealedBlock) { return arrow::Status::IOError("channel closed"); };
  ASSERT_OK_AND_ASSIGN(auto buffer,
                       PartitionBuffer::Make(StreamKey{"s9", 4, 2, 0}, testing::TestSchema(kind),
                                             options, pool_.get(), failing));
  ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, 0, 10));
  ASSERT_RAISES_WITH(IOError, "shuffle 's9' partition 4 writer 2: channel closed",
                     buffer->Append(slice));
  ASSERT_RAISES_WITH(IOError, "channel closed", buffer->Flush());
}

TEST_F(PartitionBufferTest, BudgetExhaustionIsAClearError) {
  ASSERT_OK_AND_ASSIGN(auto tiny, BudgetedMemoryPool::Make(16 * 1024));
  auto kind = TestSchemaKind::kPrimitive;
  PartitionBufferOptions options;
  options.target_rows = 100000;
  options.target_bytes = 1 << 30;
  ASSERT_OK_AND_ASSIGN(auto buffer,
                       PartitionBuffer::Make(StreamKey{"s", 0, 0, 0}, testing::TestSchema(kind),
                                             options, tiny.get(),
                                             [](SealedBlock) { return arrow::Status::OK(); }));
  ASSERT_OK_AND_ASSIGN(auto slice, testing::MakeTestBatch(kind, 0, 5000));
  ASSERT_OK(buffer->Append(slice));
  ASSERT_RAISES_WITH(OutOfMemory, "shuffle memory budget exceeded", buffer->Flush());
  EXPECT_LE(tiny->peak_bytes(), 16 * 1024);
}

}  // namespace
}  // namespace sabot
