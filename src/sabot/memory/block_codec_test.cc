#include "sabot/memory/block_codec.h"

#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>

#include "sabot/memory/budget_pool.h"
#include "sabot/memory/crc32c.h"
#include "sabot/memory/test_batches.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using testing::TestSchemaKind;

class BlockCodecRoundTrip
    : public ::testing::TestWithParam<std::tuple<TestSchemaKind, arrow::Compression::type>> {};

TEST_P(BlockCodecRoundTrip, DecodesExactlyAndAnyArrowReaderAgrees) {
  auto [kind, compression] = GetParam();
  ASSERT_OK_AND_ASSIGN(auto pool, BudgetedMemoryPool::Make(64 << 20));
  auto schema = testing::TestSchema(kind);
  BlockCodecOptions options;
  options.compression = compression;
  ASSERT_OK_AND_ASSIGN(auto encoder, BlockEncoder::Make(schema, options, pool.get()));
  ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(schema, pool.get()));

  std::vector<std::shared_ptr<arrow::RecordBatch>> inputs;
  std::vector<SealedBlock> blocks;
  int64_t row = 0;
  for (int64_t rows : {1, 100, 0, 997, 3}) {
    ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, row, rows));
    row += rows;
    ASSERT_OK_AND_ASSIGN(auto block, encoder->Encode(*batch));
    EXPECT_EQ(block.num_rows, rows);
    EXPECT_EQ(block.crc32c, Crc32c(block.ipc_bytes->data(), block.ipc_bytes->size()));
    EXPECT_EQ(block.ipc_bytes->size() % 8, 0);
    EXPECT_EQ(block.size_bytes(), block.ipc_bytes->size());
    inputs.push_back(batch);
    blocks.push_back(block);
  }
  EXPECT_GT(pool->bytes_allocated(), 0) << "block bytes come from the budget pool";

  // Our decoder, block by block.
  for (size_t i = 0; i < blocks.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(blocks[i]));
    ASSERT_BATCHES_EQUAL(*inputs[i], *decoded);
  }

  // An independent reader: Arrow's own IPC stream reader over schema message + blocks.
  arrow::BufferVector pieces{encoder->schema_message()};
  for (const auto& b : blocks) pieces.push_back(b.ipc_bytes);
  ASSERT_OK_AND_ASSIGN(auto stream, arrow::ConcatenateBuffers(pieces));
  auto input = std::make_shared<arrow::io::BufferReader>(stream);
  ASSERT_OK_AND_ASSIGN(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input));
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ASSERT_OK(reader->ReadNext(&batch));
    ASSERT_NE(batch, nullptr);
    ASSERT_BATCHES_EQUAL(*inputs[i], *batch);
  }
  std::shared_ptr<arrow::RecordBatch> end;
  ASSERT_OK(reader->ReadNext(&end));
  EXPECT_EQ(end, nullptr);

  blocks.clear();
  inputs.clear();
}

INSTANTIATE_TEST_SUITE_P(
    Schemas, BlockCodecRoundTrip,
    ::testing::Combine(::testing::ValuesIn(testing::AllTestSchemaKinds()),
                       ::testing::Values(arrow::Compression::UNCOMPRESSED,
                                         arrow::Compression::LZ4_FRAME,
                                         arrow::Compression::ZSTD)),
    [](const auto& info) {
      return testing::ToString(std::get<0>(info.param)) + "_" +
             arrow::util::Codec::GetCodecAsString(std::get<1>(info.param));
    });

TEST(BlockCodecTest, EveryBlockCarriesItsDictionaries) {
  auto kind = TestSchemaKind::kDictionary;
  auto schema = testing::TestSchema(kind);
  ASSERT_OK_AND_ASSIGN(auto encoder, BlockEncoder::Make(schema, {}, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto first, testing::MakeTestBatch(kind, 0, 50));
  ASSERT_OK_AND_ASSIGN(auto second, testing::MakeTestBatch(kind, 53, 50));
  ASSERT_OK_AND_ASSIGN(auto b1, encoder->Encode(*first));
  ASSERT_OK_AND_ASSIGN(auto b2, encoder->Encode(*second));
  // A decoder that starts at the second block decodes it alone: blocks are self-contained.
  ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(schema));
  ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(b2));
  ASSERT_BATCHES_EQUAL(*second, *decoded);
  // And the dictionaries differ, so the second block replaced the first's.
  ASSERT_OK_AND_ASSIGN(auto decoder2, BlockDecoder::Make(schema));
  ASSERT_OK_AND_ASSIGN(auto d1, decoder2->Decode(b1));
  ASSERT_OK_AND_ASSIGN(auto d2, decoder2->Decode(b2));
  const auto& dict1 = static_cast<const arrow::DictionaryArray&>(*d1->column(1)).dictionary();
  const auto& dict2 = static_cast<const arrow::DictionaryArray&>(*d2->column(1)).dictionary();
  EXPECT_FALSE(dict1->Equals(*dict2));
  ASSERT_BATCHES_EQUAL(*first, *d1);
  ASSERT_BATCHES_EQUAL(*second, *d2);
}

TEST(BlockCodecTest, UncompressedDecodeIsZeroCopy) {
  auto kind = TestSchemaKind::kPrimitive;
  ASSERT_OK_AND_ASSIGN(auto encoder, BlockEncoder::Make(testing::TestSchema(kind), {},
                                                        arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, 0, 1000));
  ASSERT_OK_AND_ASSIGN(auto block, encoder->Encode(*batch));
  ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(testing::TestSchema(kind)));
  ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(block));
  const uint8_t* begin = block.ipc_bytes->data();
  const uint8_t* end = begin + block.ipc_bytes->size();
  const uint8_t* values = decoded->column(0)->data()->buffers[1]->data();
  EXPECT_TRUE(values >= begin && values < end) << "values should point into the block's bytes";
}

TEST(BlockCodecTest, CompressionShrinksCompressibleBlocks) {
  auto kind = TestSchemaKind::kPrimitive;
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, 0, 20000));
  int64_t plain_size = 0;
  for (auto c : {arrow::Compression::UNCOMPRESSED, arrow::Compression::LZ4_FRAME,
                 arrow::Compression::ZSTD}) {
    BlockCodecOptions options;
    options.compression = c;
    ASSERT_OK_AND_ASSIGN(auto encoder, BlockEncoder::Make(testing::TestSchema(kind), options,
                                                          arrow::default_memory_pool()));
    ASSERT_OK_AND_ASSIGN(auto block, encoder->Encode(*batch));
    if (c == arrow::Compression::UNCOMPRESSED) {
      plain_size = block.ipc_bytes->size();
    } else {
      EXPECT_LT(block.ipc_bytes->size(), plain_size / 2) << arrow::util::Codec::GetCodecAsString(c);
    }
  }
}

TEST(BlockCodecTest, DetectsCorruptionAndForeignBytes) {
  auto kind = TestSchemaKind::kStrings;
  auto schema = testing::TestSchema(kind);
  ASSERT_OK_AND_ASSIGN(auto encoder, BlockEncoder::Make(schema, {}, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, 0, 100));
  ASSERT_OK_AND_ASSIGN(auto block, encoder->Encode(*batch));

  ASSERT_OK_AND_ASSIGN(auto copy, block.ipc_bytes->CopySlice(0, block.ipc_bytes->size()));
  copy->mutable_data()[copy->size() / 2] ^= 0x10;
  SealedBlock damaged = block;
  damaged.ipc_bytes = std::move(copy);
  ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(schema));
  ASSERT_RAISES_WITH(IOError, "checksum mismatch", decoder->Decode(damaged).status());

  // A caller that verified the bytes itself may skip the check: intact bytes with a wrong
  // crc32c field then decode, and are refused when the check runs.
  SealedBlock mislabeled = block;
  mislabeled.crc32c ^= 1;
  ASSERT_OK_AND_ASSIGN(auto trusting, BlockDecoder::Make(schema));
  ASSERT_OK_AND_ASSIGN(auto decoded, trusting->Decode(mislabeled, /*verify_checksum=*/false));
  ASSERT_BATCHES_EQUAL(*batch, *decoded);
  ASSERT_RAISES_WITH(IOError, "checksum mismatch", trusting->Decode(mislabeled).status());

  // Two batches in one block are refused, even with a valid checksum.
  ASSERT_OK_AND_ASSIGN(auto doubled, arrow::ConcatenateBuffers({block.ipc_bytes, block.ipc_bytes}));
  SealedBlock two;
  two.ipc_bytes = doubled;
  two.num_rows = 100;
  two.crc32c = Crc32c(doubled->data(), doubled->size());
  ASSERT_OK_AND_ASSIGN(auto decoder2, BlockDecoder::Make(schema));
  ASSERT_RAISES_WITH(Invalid, "after its record batch", decoder2->Decode(two).status());
}

TEST(BlockCodecTest, RejectsMismatchedSchemaAndUnknownCodec) {
  ASSERT_OK_AND_ASSIGN(auto encoder,
                       BlockEncoder::Make(testing::TestSchema(TestSchemaKind::kPrimitive), {},
                                          arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto other, testing::MakeTestBatch(TestSchemaKind::kStrings, 0, 5));
  ASSERT_RAISES_WITH(Invalid, "does not match", encoder->Encode(*other).status());
  BlockCodecOptions gzip;
  gzip.compression = arrow::Compression::GZIP;
  ASSERT_RAISES_WITH(Invalid, "LZ4_FRAME or ZSTD",
                     BlockEncoder::Make(testing::TestSchema(TestSchemaKind::kPrimitive), gzip,
                                        arrow::default_memory_pool())
                         .status());
  ASSERT_OK_AND_ASSIGN(auto lz4, ParseBlockCompression("lz4"));
  EXPECT_EQ(lz4, arrow::Compression::LZ4_FRAME);
  ASSERT_RAISES_WITH(Invalid, "unknown block compression", ParseBlockCompression("snappy").status());
}

TEST(BlockCodecTest, UnencodedBlocksPassThroughAndEncodeOnDemand) {
  auto kind = TestSchemaKind::kNestedLists;
  auto schema = testing::TestSchema(kind);
  ASSERT_OK_AND_ASSIGN(auto encoder, BlockEncoder::Make(schema, {}, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeTestBatch(kind, 10, 40));
  SealedBlock unencoded;
  unencoded.batch = batch;
  unencoded.num_rows = batch->num_rows();
  EXPECT_FALSE(unencoded.encoded());
  EXPECT_GT(unencoded.size_bytes(), 0);
  ASSERT_OK_AND_ASSIGN(auto decoder, BlockDecoder::Make(schema));
  ASSERT_OK_AND_ASSIGN(auto same, decoder->Decode(unencoded));
  EXPECT_EQ(same.get(), batch.get());
  ASSERT_OK_AND_ASSIGN(auto encoded, encoder->EnsureEncoded(unencoded));
  EXPECT_TRUE(encoded.encoded());
  ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(encoded));
  ASSERT_BATCHES_EQUAL(*batch, *decoded);
}

}  // namespace
}  // namespace sabot
