// Rows of very different widths through a pipelined shuffle: the partition buffer must cut
// blocks by the rows' actual bytes, so every block fits what a channel can reserve, and a row
// no channel can ever hold must be refused with an error naming its size and the limit.

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

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

  // Forwards `batches` 1 -> 1 through a pipelined, uncompressed shuffle; returns what the reader
  // got (or the first error of the writer or the reader).
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Forward(
      const std::shared_ptr<arrow::Schema>& schema,
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
    ShuffleOptions options;
    options.mode = ShuffleMode::kPipelined;
    options.timeout = std::chrono::seconds(60);
    ARROW_ASSIGN_OR_RAISE(auto spec, PartitionSpec::Forward(1));
    ARROW_ASSIGN_OR_RAISE(ShuffleId id, manager_->RegisterShuffle("wide", spec, schema, 1, options));
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
    auto read = [&]() -> arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> {
      ARROW_ASSIGN_OR_RAISE(auto reader, manager_->ReadPartition(id, 0));
      return reader->ReadAll();
    }();
    writer.join();
    ARROW_RETURN_NOT_OK(written);
    ARROW_RETURN_NOT_OK(read.status());
    ARROW_RETURN_NOT_OK(manager_->Release(id));
    return read;
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

}  // namespace
}  // namespace sabot
