// Rows of very different widths through a pipelined shuffle: the partition buffer must cut
// blocks by the rows' actual bytes, so every block fits what a channel can reserve, and a row
// no channel can ever hold must be refused with an error naming its size and the limit.

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/memory/test_batches.h"
#include "sabot/memory/test_wide_batches.h"
#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/testing/assertions.h"
#include "sabot/transport/in_process_transport.h"

namespace sabot {
namespace {

// A schema of a row id and one wide column.
std::shared_ptr<arrow::Schema> WideSchema(std::shared_ptr<arrow::DataType> type) {
  return arrow::schema({arrow::field("id", arrow::int64()), arrow::field("v", std::move(type))});
}

// `empty` rows with an empty string, then `wide` rows of `width` bytes each.
std::shared_ptr<arrow::RecordBatch> EmptyThenWide(int64_t empty, int64_t wide, int64_t width) {
  arrow::Int64Builder ids;
  arrow::StringBuilder values;
  for (int64_t i = 0; i < empty + wide; ++i) {
    EXPECT_OK(ids.Append(i));
    if (i < empty) {
      EXPECT_OK(values.Append(""));
    } else {
      EXPECT_OK(values.Append(std::string(static_cast<size_t>(width),
                                          static_cast<char>('a' + i % 26))));
    }
  }
  auto id_array = ids.Finish().ValueOrDie();
  auto value_array = values.Finish().ValueOrDie();
  return arrow::RecordBatch::Make(WideSchema(arrow::utf8()), empty + wide,
                                  {id_array, value_array});
}

class WideRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = InProcessTransport::Make().ValueOrDie();
    ShuffleManagerOptions options;
    options.memory_budget = 256 << 20;
    manager_ = ShuffleManager::Make(options, transport_.get()).ValueOrDie();
  }

  // Shuffles `batches` from one writer task through an uncompressed shuffle by `spec` (pipelined
  // unless `mode` says otherwise), reading every partition on its own thread; returns each
  // partition's batches, or the first error of the writer or a reader.
  arrow::Result<std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>>> Shuffle(
      const std::shared_ptr<arrow::Schema>& schema, std::shared_ptr<const PartitionSpec> spec,
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
      ShuffleMode mode = ShuffleMode::kPipelined) {
    ShuffleOptions options;
    options.mode = mode;
    options.timeout = std::chrono::seconds(60);
    const int32_t partitions = static_cast<int32_t>(spec->num_partitions());
    ARROW_ASSIGN_OR_RAISE(ShuffleId id,
                          manager_->RegisterShuffle("wide", spec, schema, 1, options));
    arrow::Status written;
    std::thread writer([&] {
      written = [&]() -> arrow::Status {
        ARROW_RETURN_NOT_OK(manager_->OpenWriter(id, 0));
        for (const auto& batch : batches) {
          arrow::Status st = manager_->Write(id, 0, batch);
          if (!st.ok()) {
            (void)manager_->AbortWriter(id, 0, st);
            return st;
          }
        }
        return manager_->Finish(id, 0);
      }();
    });
    std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>> received(partitions);
    std::vector<arrow::Status> read(partitions);
    std::vector<std::thread> readers;
    for (PartitionId p = 0; p < partitions; ++p) {
      readers.emplace_back([&, p] {
        read[p] = [&]() -> arrow::Status {
          ARROW_ASSIGN_OR_RAISE(auto reader, manager_->ReadPartition(id, p));
          ARROW_ASSIGN_OR_RAISE(received[p], reader->ReadAll());
          return arrow::Status::OK();
        }();
      });
    }
    writer.join();
    for (auto& reader : readers) reader.join();
    ARROW_RETURN_NOT_OK(written);
    for (const auto& status : read) ARROW_RETURN_NOT_OK(status);
    ARROW_RETURN_NOT_OK(manager_->Release(id));
    return received;
  }

  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Forward(
      const std::shared_ptr<arrow::Schema>& schema,
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
    ARROW_ASSIGN_OR_RAISE(auto spec, PartitionSpec::Forward(1));
    ARROW_ASSIGN_OR_RAISE(auto received, Shuffle(schema, spec, batches));
    return received[0];
  }

  std::unique_ptr<InProcessTransport> transport_;
  std::unique_ptr<ShuffleManager> manager_;
};

// The reproduction: 900 empty strings, then 100 strings of 20 KB, in one batch.
TEST_F(WideRowsTest, EmptyThenWideStringsGoThroughInOrder) {
  auto batch = EmptyThenWide(900, 100, 20 * 1024);
  ASSERT_OK_AND_ASSIGN(auto received, Forward(batch->schema(), {batch}));
  ASSERT_OK_AND_ASSIGN(auto actual, arrow::ConcatenateRecordBatches(received));
  ASSERT_BATCHES_EQUAL(*batch, *actual);
}

// Every variable-width kind, with runs of 20 KB rows among rows of a few bytes, nulls, and an
// input sliced at an offset: forwarded 1 -> 1, every row arrives once, in order, unchanged.
TEST_F(WideRowsTest, EveryKindOfWideRowsIsForwardedInOrder) {
  for (auto kind : testing::AllWideKinds()) {
    SCOPED_TRACE(testing::ToString(kind));
    ASSERT_OK_AND_ASSIGN(auto first, testing::MakeWideBatch(kind, 0, 1000, 20 * 1024));
    ASSERT_OK_AND_ASSIGN(auto padded, testing::MakeWideBatch(kind, 990, 1010, 20 * 1024));
    std::vector<std::shared_ptr<arrow::RecordBatch>> inputs = {first, padded->Slice(10, 1000)};
    ASSERT_OK_AND_ASSIGN(auto received, Forward(testing::WideSchema(kind), inputs));
    ASSERT_OK_AND_ASSIGN(auto expected, testing::ConcatenateDense(inputs));
    ASSERT_OK_AND_ASSIGN(auto actual, testing::ConcatenateDense(received));
    ASSERT_BATCHES_EQUAL(*expected, *actual);
  }
}

// Hashed over four partitions: each partition holds the rows whose id hashes there, each once,
// in writer order, and together every row (checked against the input, row by id).
TEST_F(WideRowsTest, HashedWideRowsArriveOnceInOrder) {
  for (auto kind : {testing::WideKind::kString, testing::WideKind::kList,
                    testing::WideKind::kDictionary}) {
    SCOPED_TRACE(testing::ToString(kind));
    ASSERT_OK_AND_ASSIGN(auto input, testing::MakeWideBatch(kind, 0, 2000, 20 * 1024));
    ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Hash({"id"}, 4));
    ASSERT_OK_AND_ASSIGN(auto received, Shuffle(input->schema(), spec, {input}));
    std::vector<int> seen(2000, 0);
    for (const auto& batches : received) {
      if (batches.empty()) continue;
      ASSERT_OK_AND_ASSIGN(auto part, testing::ConcatenateDense(batches));
      const auto& ids = static_cast<const arrow::Int64Array&>(*part->column(0));
      for (int64_t i = 0; i < ids.length(); ++i) {
        if (i > 0) {
          ASSERT_LT(ids.Value(i - 1), ids.Value(i)) << "writer order within a partition";
        }
        ASSERT_OK_AND_ASSIGN(auto expected,
                             testing::ConcatenateDense({input->Slice(ids.Value(i), 1)}));
        ASSERT_BATCHES_EQUAL(*expected, *part->Slice(i, 1));
        seen[static_cast<size_t>(ids.Value(i))] += 1;
      }
    }
    for (int64_t id = 0; id < 2000; ++id) ASSERT_EQ(seen[static_cast<size_t>(id)], 1) << id;
  }
}

// A row larger than a channel can ever reserve (10 segments of 32 KiB by default) is refused
// with an error naming its size, the partition and the limit; the reader ends instead of
// waiting for the rest of the stream.
TEST_F(WideRowsTest, ARowNoChannelCanHoldIsRefusedWithItsSize) {
  // The wide row: 8 bytes of id, a 4-byte offset and 1 MiB of string (no nulls, no bitmap).
  auto batch = EmptyThenWide(10, 1, 1 << 20);
  arrow::Status status = Forward(batch->schema(), {batch}).status();
  ASSERT_RAISES_WITH(CapacityError, "a row of 1048588 bytes", status);
  EXPECT_NE(status.message().find("partition 0"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("327680 bytes"), std::string::npos) << status.message();
}

// A blocking shuffle has no channel limit: the same row travels in a block of its own.
TEST_F(WideRowsTest, ABlockingShuffleTakesARowOfAnySize) {
  auto batch = EmptyThenWide(10, 2, 1 << 20);
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Forward(1));
  ASSERT_OK_AND_ASSIGN(auto received,
                       Shuffle(batch->schema(), spec, {batch}, ShuffleMode::kBlocking));
  ASSERT_OK_AND_ASSIGN(auto actual, arrow::ConcatenateRecordBatches(received[0]));
  ASSERT_BATCHES_EQUAL(*batch, *actual);
}

}  // namespace
}  // namespace sabot
