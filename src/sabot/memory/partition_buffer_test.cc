#include "sabot/memory/partition_buffer.h"

#include <chrono>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/memory/budget_pool.h"
#include "sabot/memory/row_bytes.h"
#include "sabot/memory/test_batches.h"
#include "sabot/memory/test_budget.h"
#include "sabot/memory/test_wide_batches.h"
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

  std::unique_ptr<PartitionBuffer> MakeBufferFor(std::shared_ptr<arrow::Schema> schema,
                                                 PartitionBufferOptions options) {
    auto sink = [this](SealedBlock block) {
      blocks_.push_back(std::move(block));
      return arrow::Status::OK();
    };
    return PartitionBuffer::Make(StreamKey{"shuffle-1", 3, 1, 0}, std::move(schema), options,
                                 pool_.get(), sink, &metrics_)
        .ValueOrDie();
  }

  // Decodes every sealed block, in order.
  std::vector<std::shared_ptr<arrow::RecordBatch>> Decoded(TestSchemaKind kind) {
    return Decoded(testing::TestSchema(kind));
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> Decoded(std::shared_ptr<arrow::Schema> schema) {
    auto decoder = BlockDecoder::Make(std::move(schema), pool_.get()).ValueOrDie();
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

// In-process (unencoded) buffers hand a slice of at least pass_through_bytes on uncopied: it
// becomes a block of its own whose batch is the slice itself, what was buffered before it is
// sealed as it is, and smaller slices are still coalesced. Encoded buffers coalesce everything.
TEST_F(PartitionBufferTest, InProcessLargeSlicesPassThroughUncopied) {
  for (auto kind : {TestSchemaKind::kPrimitive, TestSchemaKind::kStrings}) {
    SCOPED_TRACE(testing::ToString(kind));
    ASSERT_OK_AND_ASSIGN(auto small1, testing::MakeTestBatch(kind, 0, 10));
    ASSERT_OK_AND_ASSIGN(auto small2, testing::MakeTestBatch(kind, 10, 10));
    ASSERT_OK_AND_ASSIGN(auto large, testing::MakeTestBatch(kind, 20, 2000));
    ASSERT_OK_AND_ASSIGN(auto small3, testing::MakeTestBatch(kind, 2020, 10));
    const std::vector<std::shared_ptr<arrow::RecordBatch>> inputs = {small1, small2, large, small3};
    ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
    for (bool encode : {false, true}) {
      SCOPED_TRACE(encode ? "encoded" : "unencoded");
      blocks_.clear();
      PartitionBufferOptions options;
      options.encode = encode;
      options.target_rows = 1 << 20;
      options.target_bytes = 64 << 20;
      options.buffer_timeout = std::chrono::nanoseconds(0);
      options.pass_through_bytes = RowBytes::RangeBytes(*large, 0, large->num_rows());
      auto buffer = MakeBuffer(kind, options);
      for (const auto& input : inputs) ASSERT_OK(buffer->Append(input));
      ASSERT_OK(buffer->Finish());
      if (encode) {
        ASSERT_EQ(blocks_.size(), 1u);
      } else {
        ASSERT_EQ(blocks_.size(), 3u);
        EXPECT_EQ(blocks_[0].num_rows, 20);  // the two small slices, coalesced
        EXPECT_EQ(blocks_[1].batch, large);  // the large one itself: no row copied
        EXPECT_EQ(blocks_[2].num_rows, 10);
      }
      ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(Decoded(kind)));
      ASSERT_BATCHES_EQUAL(*expected, *actual);
    }
    // 0: every slice passes through; larger than the target, none does.
    blocks_.clear();
    PartitionBufferOptions options;
    options.encode = false;
    options.target_rows = 1 << 20;
    options.target_bytes = 64 << 20;
    options.pass_through_bytes = 0;
    auto each = MakeBuffer(kind, options);
    for (const auto& input : inputs) ASSERT_OK(each->Append(input));
    ASSERT_OK(each->Finish());
    ASSERT_EQ(blocks_.size(), inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(blocks_[i].batch, inputs[i]);
    blocks_.clear();
    options.pass_through_bytes = options.target_bytes + 1;
    auto none = MakeBuffer(kind, options);
    for (const auto& input : inputs) ASSERT_OK(none->Append(input));
    ASSERT_OK(none->Finish());
    EXPECT_EQ(blocks_.size(), 1u);
  }
}

TEST_F(PartitionBufferTest, NegativePassThroughBytesRefused) {
  PartitionBufferOptions options;
  options.pass_through_bytes = -1;
  auto made = PartitionBuffer::Make(StreamKey{"shuffle-1", 3, 1, 0},
                                    testing::TestSchema(TestSchemaKind::kPrimitive), options,
                                    pool_.get(), [](SealedBlock) { return arrow::Status::OK(); });
  ASSERT_RAISES_WITH(Invalid, "pass_through_bytes", made.status());
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

// Rows of very different widths (runs of 8 KiB rows among rows of 0 to 6 bytes, nulls) of every
// variable-width kind, including slices with an offset and slices of one row: blocks are cut by
// the rows' actual bytes, so a block of several rows stays within the byte target and every
// block within max_block_bytes, and every row comes out once, in order.
TEST_F(PartitionBufferTest, CutsBlocksByTheRowsActualBytes) {
  constexpr int64_t kTarget = 48 * 1024;
  constexpr int64_t kMax = 64 * 1024;
  for (auto kind : testing::AllWideKinds()) {
    for (bool encode : {true, false}) {
      SCOPED_TRACE(testing::ToString(kind) + (encode ? " encoded" : " unencoded"));
      blocks_.clear();
      PartitionBufferOptions options;
      options.target_rows = 1 << 20;
      options.target_bytes = kTarget;
      options.max_block_bytes = kMax;
      options.buffer_timeout = std::chrono::nanoseconds(0);
      options.encode = encode;
      auto schema = testing::WideSchema(kind);
      auto buffer = MakeBufferFor(schema, options);
      std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
      ASSERT_OK_AND_ASSIGN(auto first, testing::MakeWideBatch(kind, 0, 500, 8192));
      inputs.push_back(first);
      ASSERT_OK_AND_ASSIGN(auto padded, testing::MakeWideBatch(kind, 490, 530, 8192));
      inputs.push_back(padded->Slice(10, 500));  // rows 500..999, at offset 10 of their arrays
      ASSERT_OK_AND_ASSIGN(auto last, testing::MakeWideBatch(kind, 1000, 500, 8192));
      for (auto [offset, rows] : std::vector<std::pair<int64_t, int64_t>>{
               {0, 1}, {1, 7}, {8, 92}, {100, 259}, {359, 1}, {360, 140}}) {
        inputs.push_back(last->Slice(offset, rows));
      }
      for (const auto& input : inputs) ASSERT_OK(buffer->Append(input));
      ASSERT_OK(buffer->Finish());
      const int64_t overhead = RowBytes::BlockOverheadBytes(*schema, /*compressed=*/false);
      int64_t rows = 0;
      for (const auto& block : blocks_) {
        EXPECT_LE(block.size_bytes(), kMax) << "block of " << block.num_rows << " rows";
        if (block.num_rows > 1) {
          EXPECT_LE(block.size_bytes(), kTarget + overhead) << "block of " << block.num_rows;
        }
        rows += block.num_rows;
      }
      EXPECT_EQ(rows, 1500);
      EXPECT_EQ(buffer->rows_sealed(), 1500);
      ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
      ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(Decoded(schema)));
      ASSERT_BATCHES_EQUAL(*expected, *actual);
    }
  }
}

// A row no block within max_block_bytes can hold is refused, naming its size, the stream and
// the limit; the rows before it were sealed, and the buffer keeps failing after.
TEST_F(PartitionBufferTest, ARowOverTheBlockLimitIsRefusedWithItsSize) {
  for (bool encode : {true, false}) {
    SCOPED_TRACE(encode ? "encoded" : "unencoded");
    blocks_.clear();
    PartitionBufferOptions options;
    options.target_bytes = 48 * 1024;
    options.max_block_bytes = 64 * 1024;
    options.encode = encode;
    auto schema = testing::WideSchema(testing::WideKind::kString);
    auto buffer = MakeBufferFor(schema, options);
    // Rows 355..359 are narrow, row 360 is null, rows 361.. are 100 KiB each.
    ASSERT_OK_AND_ASSIGN(auto batch,
                         testing::MakeWideBatch(testing::WideKind::kString, 355, 10, 100 * 1024));
    const int64_t row_bytes = RowBytes::RangeBytes(*batch, 6, 7);
    EXPECT_GT(row_bytes, 100 * 1024);
    arrow::Status refused = buffer->Append(batch);
    ASSERT_RAISES_WITH(CapacityError, "a row of " + std::to_string(row_bytes) + " bytes",
                       refused);
    EXPECT_NE(refused.message().find("partition 3"), std::string::npos) << refused.message();
    EXPECT_NE(refused.message().find("65536 bytes"), std::string::npos) << refused.message();
    ASSERT_EQ(blocks_.size(), 1u);
    EXPECT_EQ(blocks_[0].num_rows, 6);
    ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense({batch->Slice(0, 6)}));
    ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(Decoded(schema)));
    ASSERT_BATCHES_EQUAL(*expected, *actual);
    ASSERT_RAISES_WITH(CapacityError, "a row of", buffer->Finish());
  }
}

// Arrow's IPC writer sends the whole offsets of a zero-length string array (at offset 0): a
// slice of list rows that are all empty would carry the offsets of every string of its batch.
// The buffer copies such rows out.
TEST_F(PartitionBufferTest, EmptyListRowsDoNotCarryTheirBatchsValues) {
  auto values = std::make_shared<arrow::StringBuilder>();
  arrow::ListBuilder lists(arrow::default_memory_pool(), values);
  for (int64_t r = 0; r < 300; ++r) {
    ASSERT_OK(lists.Append());
    // Rows 250..299: 2000 one-letter strings each, 400 KB of offsets in all.
    for (int e = 0; r >= 250 && e < 2000; ++e) ASSERT_OK(values->Append("x"));
  }
  ASSERT_OK_AND_ASSIGN(auto column, lists.Finish());
  auto schema = arrow::schema({arrow::field("l", arrow::list(arrow::utf8()))});
  auto batch = arrow::RecordBatch::Make(schema, 300, {column});
  PartitionBufferOptions options;
  options.target_bytes = 64 * 1024;
  options.max_block_bytes = 96 * 1024;
  auto buffer = MakeBufferFor(schema, options);
  ASSERT_OK(buffer->Append(batch->Slice(0, 250)));  // empty lists: an empty strings child
  ASSERT_OK(buffer->Flush());
  ASSERT_OK(buffer->Append(batch->Slice(250)));
  ASSERT_OK(buffer->Finish());
  ASSERT_GE(blocks_.size(), 2u);
  for (const auto& block : blocks_) EXPECT_LE(block.size_bytes(), 96 * 1024);
  EXPECT_EQ(blocks_.front().num_rows, 250) << "the empty lists, in one block";
  EXPECT_LT(blocks_.front().size_bytes(), 4096) << "without the batch's strings";
  ASSERT_OK_AND_ASSIGN(auto actual, arrow::ConcatenateRecordBatches(Decoded(schema)));
  ASSERT_BATCHES_EQUAL(*batch, *actual);
}

// When the bound on a block's bytes misses (here: 16 MiB that LZ4 grows by its frame headers),
// the sealed block over max_block_bytes is cut again, in halves by bytes, instead of failing.
TEST_F(PartitionBufferTest, ABlockThatEncodesOverTheLimitIsCutAgain) {
  std::mt19937_64 random(3);
  arrow::BinaryBuilder builder;
  std::string value(static_cast<size_t>((1 << 20) - 4), '\0');
  for (int r = 0; r < 24; ++r) {
    for (auto& c : value) c = static_cast<char>(random());
    ASSERT_OK(builder.Append(value));
  }
  ASSERT_OK_AND_ASSIGN(auto column, builder.Finish());
  auto schema = arrow::schema({arrow::field("b", arrow::binary())});
  auto batch = arrow::RecordBatch::Make(schema, 24, {column});
  PartitionBufferOptions options;
  options.codec.compression = arrow::Compression::LZ4_FRAME;
  options.target_bytes = 1 << 30;
  // A block's rows may take exactly 16 rows' bytes.
  options.max_block_bytes =
      RowBytes::RangeBytes(*batch, 0, 16) + RowBytes::BlockOverheadBytes(*schema, true);
  // 24 MiB of blocks: a pool of their own, whatever the test budget.
  std::vector<SealedBlock> blocks;
  ASSERT_OK_AND_ASSIGN(
      auto buffer, PartitionBuffer::Make(StreamKey{"s", 0, 0, 0}, schema, options,
                                         arrow::default_memory_pool(), [&](SealedBlock block) {
                                           blocks.push_back(std::move(block));
                                           return arrow::Status::OK();
                                         }));
  ASSERT_OK(buffer->Append(batch));
  ASSERT_OK(buffer->Finish());
  std::vector<int64_t> rows;
  for (const auto& block : blocks) {
    EXPECT_LE(block.size_bytes(), options.max_block_bytes);
    rows.push_back(block.num_rows);
  }
  EXPECT_EQ(rows, (std::vector<int64_t>{8, 8, 8})) << "16 rows cut in halves, then the last 8";
  ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(schema));
  std::vector<std::shared_ptr<arrow::RecordBatch>> decoded;
  for (const auto& block : blocks) {
    ASSERT_OK_AND_ASSIGN(auto part, decoder->Decode(block));
    decoded.push_back(part);
  }
  ASSERT_OK_AND_ASSIGN(auto actual, arrow::ConcatenateRecordBatches(decoded));
  ASSERT_BATCHES_EQUAL(*batch, *actual);
}

}  // namespace
}  // namespace sabot
