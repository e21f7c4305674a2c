#include "sabot/transport/ipc_block.h"

#include <gtest/gtest.h>

#include <arrow/array/builder_dict.h>
#include <arrow/type.h>

#include "sabot/common/data_generator.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::RecordBatch> Batch(int64_t index) {
  DataGeneratorOptions data;
  data.batch_rows = 1000;
  data.string_key = true;
  return GenerateBatch(data, index).ValueOrDie();
}

TEST(IpcBlockTest, EncodesOnceAndDecodesEveryCodec) {
  for (Compression c : {Compression::kNone, Compression::kLz4Frame, Compression::kZstd}) {
    SCOPED_TRACE(CompressionName(c));
    auto batch = Batch(0);
    ASSERT_OK_AND_ASSIGN(auto block, EncodeIpcBlock(*batch, c));
    EXPECT_TRUE(block.encoded());
    EXPECT_EQ(block.num_rows, batch->num_rows());
    ASSERT_OK_AND_ASSIGN(auto decoder, IpcBlockDecoder::Make(batch->schema()));
    ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(block.ipc_bytes));
    ASSERT_BATCHES_EQUAL(*batch, *decoded);
    ASSERT_OK_AND_ASSIGN(auto second, EncodeIpcBlock(*Batch(1), c));
    ASSERT_OK_AND_ASSIGN(auto decoded_second, decoder->Decode(second.ipc_bytes));
    ASSERT_BATCHES_EQUAL(*Batch(1), *decoded_second);
  }
}

TEST(IpcBlockTest, Crc32cCoversTheBytes) {
  ASSERT_OK_AND_ASSIGN(auto a, EncodeIpcBlock(*Batch(4), Compression::kNone));
  ASSERT_OK_AND_ASSIGN(auto b, EncodeIpcBlock(*Batch(4), Compression::kNone));
  ASSERT_OK_AND_ASSIGN(auto c, EncodeIpcBlock(*Batch(5), Compression::kNone));
  EXPECT_EQ(a.crc32c, b.crc32c);
  EXPECT_NE(a.crc32c, c.crc32c);
}

TEST(IpcBlockTest, SplitsIntoZeroCopyPayloads) {
  auto batch = Batch(2);
  ASSERT_OK_AND_ASSIGN(auto block, EncodeIpcBlock(*batch, Compression::kNone));
  ASSERT_OK_AND_ASSIGN(auto payloads, SplitIpcBlock(block.ipc_bytes));
  ASSERT_EQ(payloads.size(), 1u);
  EXPECT_EQ(payloads[0].type, arrow::ipc::MessageType::RECORD_BATCH);
  ASSERT_EQ(payloads[0].body_buffers.size(), 1u);
  const uint8_t* begin = block.ipc_bytes->data();
  const uint8_t* body = payloads[0].body_buffers[0]->data();
  EXPECT_TRUE(body > begin && body < begin + block.ipc_bytes->size()) << "body was copied";
}

TEST(IpcBlockTest, DictionaryBlocksCarryTheirDictionaries) {
  arrow::StringDictionaryBuilder builder;
  for (const char* value : {"a", "b", "a", "c"}) ASSERT_OK(builder.Append(value));
  ASSERT_OK_AND_ASSIGN(auto array, builder.Finish());
  auto schema = arrow::schema({arrow::field("d", array->type())});
  auto batch = arrow::RecordBatch::Make(schema, array->length(), {array});
  ASSERT_OK_AND_ASSIGN(auto block, EncodeIpcBlock(*batch, Compression::kNone));
  ASSERT_OK_AND_ASSIGN(auto payloads, SplitIpcBlock(block.ipc_bytes));
  ASSERT_EQ(payloads.size(), 2u);
  EXPECT_EQ(payloads[0].type, arrow::ipc::MessageType::DICTIONARY_BATCH);
  ASSERT_OK_AND_ASSIGN(auto decoder, IpcBlockDecoder::Make(schema));
  ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(block.ipc_bytes));
  ASSERT_BATCHES_EQUAL(*batch, *decoded);
}

TEST(IpcBlockTest, RejectsBytesThatAreNotOneBlock) {
  auto batch = Batch(3);
  ASSERT_OK_AND_ASSIGN(auto block, EncodeIpcBlock(*batch, Compression::kNone));
  auto truncated = arrow::SliceBuffer(block.ipc_bytes, 0, block.ipc_bytes->size() / 2);
  EXPECT_FALSE(SplitIpcBlock(truncated).ok());
  ASSERT_OK_AND_ASSIGN(auto schema_message, SerializeSchemaMessage(*batch->schema()));
  EXPECT_TRUE(SplitIpcBlock(schema_message).status().IsInvalid());
  EXPECT_TRUE(SplitIpcBlock(nullptr).status().IsInvalid());
  ASSERT_OK_AND_ASSIGN(auto decoder, IpcBlockDecoder::Make(batch->schema()));
  EXPECT_FALSE(decoder->Decode(truncated).ok());
}

}  // namespace
}  // namespace sabot
