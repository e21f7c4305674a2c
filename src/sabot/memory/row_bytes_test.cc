#include "sabot/memory/row_bytes.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/compute/api_vector.h>
#include <arrow/json/from_string.h>
#include <arrow/util/byte_size.h>

#include "sabot/memory/block_codec.h"
#include "sabot/memory/test_batches.h"
#include "sabot/memory/test_wide_batches.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

struct Named {
  std::string name;
  std::shared_ptr<arrow::RecordBatch> batch;
  // False for types RowBytes bounds by their whole children (views, dense unions, run-end
  // encoded): their count is an upper bound only, not the bytes the rows reference.
  bool exact = true;
};

// Types the partition buffer meets less often, with rows of 0 to 60 bytes and nulls: string
// and list views, fixed-size lists, maps, unions, run-end encoded strings, decimals, booleans.
std::shared_ptr<arrow::RecordBatch> OtherTypes() {
  const int rows = 120;
  auto word = [](int r) {
    const size_t width = static_cast<size_t>(r % 7 == 0 ? 60 : r % 5);
    return "\"" + std::string(width, static_cast<char>('a' + r % 26)) + "\"";
  };
  std::string views, list_views, fixed_lists, maps, unions, runs, decimals, bools;
  for (int r = 0; r < rows; ++r) {
    const char* sep = r == 0 ? "" : ",";
    const bool null = r % 11 == 3;
    views += sep + (null ? std::string("null") : word(r));
    list_views += sep + (null ? std::string("null") : "[" + word(r) + "," + word(r + 1) + "]");
    fixed_lists += sep + (null ? std::string("null") : "[" + word(r) + "," + word(r + 2) + "]");
    maps += sep + (null ? std::string("null") : "[[" + word(r) + "," + std::to_string(r) + "]]");
    unions += sep + (r % 2 == 0 ? "[0," + word(r) + "]" : "[1," + std::to_string(r) + "]");
    runs += sep + word(r / 10);
    decimals += sep + (null ? std::string("null") : "\"" + std::to_string(r) + ".25\"");
    bools += sep + (null ? std::string("null") : (r % 3 == 0 ? "true" : "false"));
  }
  auto union_fields = arrow::FieldVector{arrow::field("s", arrow::utf8()),
                                         arrow::field("i", arrow::int64())};
  std::vector<std::pair<std::string, std::shared_ptr<arrow::DataType>>> columns = {
      {views, arrow::utf8_view()},
      {list_views, arrow::list_view(arrow::utf8())},
      {fixed_lists, arrow::fixed_size_list(arrow::utf8(), 2)},
      {maps, arrow::map(arrow::utf8(), arrow::int64())},
      {unions, arrow::dense_union(union_fields, {0, 1})},
      {unions, arrow::sparse_union(union_fields, {0, 1})},
      {decimals, arrow::decimal128(12, 2)},
      {bools, arrow::boolean()},
  };
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (const auto& [json, type] : columns) {
    fields.push_back(arrow::field("c" + std::to_string(fields.size()), type));
    arrays.push_back(arrow::json::ArrayFromJSONString(type, "[" + json + "]").ValueOrDie());
  }
  auto values = arrow::json::ArrayFromJSONString(arrow::utf8(), "[" + runs + "]").ValueOrDie();
  auto encoded = arrow::compute::RunEndEncode(values).ValueOrDie();
  fields.push_back(arrow::field("ree", encoded.type()));
  arrays.push_back(encoded.make_array());
  return arrow::RecordBatch::Make(arrow::schema(fields), rows, arrays);
}

// Every test schema, narrow and wide, whole and as a slice with a nonzero offset.
std::vector<Named> Batches() {
  std::vector<Named> out;
  auto other = OtherTypes();
  out.push_back({"other_types", other, false});
  out.push_back({"other_types_sliced", other->Slice(9, 100), false});
  for (auto kind : testing::AllTestSchemaKinds()) {
    auto batch = testing::MakeTestBatch(kind, 5, 600).ValueOrDie();
    out.push_back({testing::ToString(kind), batch});
    out.push_back({testing::ToString(kind) + "_sliced", batch->Slice(37, 500)});
  }
  for (auto kind : testing::AllWideKinds()) {
    auto batch = testing::MakeWideBatch(kind, 300, 900, 3000).ValueOrDie();
    out.push_back({"wide_" + testing::ToString(kind), batch});
    out.push_back({"wide_" + testing::ToString(kind) + "_sliced", batch->Slice(41, 800)});
  }
  return out;
}

int64_t DictionaryBytes(const arrow::RecordBatch& batch) {
  RowBytes::Dictionaries dictionaries;
  RowBytes::CollectDictionaries(batch, &dictionaries);
  int64_t bytes = 0;
  for (const auto& entry : dictionaries) bytes += entry.second;
  return bytes;
}

// Pseudo-random row ranges [begin, end) of a batch of `rows` rows, including empty, single-row
// and whole ranges.
std::vector<std::pair<int64_t, int64_t>> Ranges(int64_t rows) {
  std::mt19937_64 random(7);
  std::vector<std::pair<int64_t, int64_t>> out = {{0, rows}, {0, 1}, {rows - 1, rows}, {3, 3}};
  for (int i = 0; i < 40; ++i) {
    int64_t a = static_cast<int64_t>(random() % static_cast<uint64_t>(rows));
    int64_t b = a + static_cast<int64_t>(random() % static_cast<uint64_t>(rows - a + 1));
    out.emplace_back(a, b);
  }
  return out;
}

// A block of rows [begin, end) — encoded (uncompressed or LZ4) from the rows copied out, or
// unencoded (the bytes its slice references) — never exceeds their RangeBytes plus their
// dictionaries plus the block overhead; and, for the types RowBytes counts exactly, RangeBytes
// exceeds what the slice references by at most a bitmap byte per 8 rows and column node
// (arrow::util counts some bitmaps of nested slices more tightly).
//
// Encoded from the slice itself, a block may hold more: Arrow's IPC writer sends the whole
// buffers of a zero-length array, nested ones included (the child of list rows that are all
// empty), which PartitionBuffer detects and undoes by copying the rows out (its own test).
TEST(RowBytes, BoundsEveryBlockOfTheRows) {
  arrow::MemoryPool* pool = arrow::default_memory_pool();
  for (const auto& [name, batch, exact] : Batches()) {
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(auto plain, BlockEncoder::Make(batch->schema(), {}, pool));
    BlockCodecOptions lz4_options;
    lz4_options.compression = arrow::Compression::LZ4_FRAME;
    ASSERT_OK_AND_ASSIGN(auto lz4, BlockEncoder::Make(batch->schema(), lz4_options, pool));
    const int64_t overhead = RowBytes::BlockOverheadBytes(*batch->schema(), false);
    const int64_t compressed_overhead = RowBytes::BlockOverheadBytes(*batch->schema(), true);
    for (auto [begin, end] : Ranges(batch->num_rows())) {
      SCOPED_TRACE("rows " + std::to_string(begin) + " to " + std::to_string(end));
      auto part = batch->Slice(begin, end - begin);
      const int64_t rows_bytes = RowBytes::RangeBytes(*batch, begin, end);
      EXPECT_EQ(RowBytes::RangeBytes(*part, 0, part->num_rows()), rows_bytes)
          << "a range counts the same in the batch and in its slice";
      if (begin == end) continue;  // blocks are never empty
      const int64_t dictionaries = DictionaryBytes(*part);
      ASSERT_OK_AND_ASSIGN(auto copied, arrow::ConcatenateRecordBatches({part}));
      if (exact) {
        EXPECT_EQ(RowBytes::RangeBytes(*copied, 0, copied->num_rows()), rows_bytes);
      }
      ASSERT_OK_AND_ASSIGN(SealedBlock encoded, plain->Encode(*copied));
      EXPECT_LE(encoded.size_bytes(), rows_bytes + dictionaries + overhead);
      ASSERT_OK_AND_ASSIGN(SealedBlock compressed, lz4->Encode(*copied));
      EXPECT_LE(compressed.size_bytes(), rows_bytes + dictionaries + compressed_overhead);
      ASSERT_OK_AND_ASSIGN(int64_t referenced, arrow::util::ReferencedBufferSize(*part));
      EXPECT_LE(referenced, rows_bytes + dictionaries + overhead);
      const int64_t nodes = static_cast<int64_t>(batch->schema()->num_fields()) * 4;
      if (exact) {
        EXPECT_LE(rows_bytes, referenced + nodes * ((end - begin + 7) / 8 + 1))
            << "the rows' bytes are referenced by their slice";
      }
    }
  }
}

// BufferBytes bounds what an unencoded block of the rows counts (Arrow's referenced and total
// buffer sizes) for every kind of column, slices included, and equals them for a batch whose
// buffers are its own.
TEST(RowBytes, BufferBytesBoundsReferencedAndTotalSizes) {
  for (const auto& [name, batch, exact] : Batches()) {
    SCOPED_TRACE(name);
    for (auto [begin, end] : Ranges(batch->num_rows())) {
      SCOPED_TRACE("rows " + std::to_string(begin) + " to " + std::to_string(end));
      auto part = batch->Slice(begin, end - begin);
      const int64_t bound = RowBytes::BufferBytes(*part);
      ASSERT_OK_AND_ASSIGN(int64_t referenced, arrow::util::ReferencedBufferSize(*part));
      EXPECT_LE(referenced, bound);
      EXPECT_LE(arrow::util::TotalBufferSize(*part), bound);
    }
  }
  ASSERT_OK_AND_ASSIGN(auto dense, arrow::RecordBatch::FromStructArray(
                                       arrow::json::ArrayFromJSONString(
                                           arrow::struct_({arrow::field("a", arrow::int64()),
                                                           arrow::field("b", arrow::utf8())}),
                                           R"([{"a": 1, "b": "x"}, {"a": null, "b": "yz"},
                                               {"a": 3, "b": null}])")
                                           .ValueOrDie()));
  ASSERT_OK_AND_ASSIGN(auto copied, arrow::ConcatenateRecordBatches({dense}));
  ASSERT_OK_AND_ASSIGN(int64_t referenced, arrow::util::ReferencedBufferSize(*copied));
  EXPECT_EQ(RowBytes::BufferBytes(*copied), arrow::util::TotalBufferSize(*copied));
  EXPECT_GE(RowBytes::BufferBytes(*copied), referenced);
}

// ReferencedBytes counts what arrow::util::ReferencedBufferSize counts, for every slice of the
// column types it covers (with and without nulls, bitmaps at every bit offset), and declines
// (-1) the others rather than guess.
TEST(RowBytes, ReferencedBytesEqualsArrowsReferencedSize) {
  const int rows = 70;
  std::string ints, bools, doubles, words, blobs, decimals, fixed, stamps, nulls;
  for (int r = 0; r < rows; ++r) {
    const char* sep = r == 0 ? "" : ",";
    const bool null = r % 9 == 4;
    ints += sep + (null ? std::string("null") : std::to_string(r * 7));
    bools += sep + std::string(null ? "null" : (r % 3 == 0 ? "true" : "false"));
    doubles += sep + std::to_string(r * 0.5);
    words += sep + (null ? std::string("null")
                         : "\"" + std::string(static_cast<size_t>(r % 6), 'w') + "\"");
    blobs += sep + std::string("\"") + std::string(static_cast<size_t>(r % 4), 'b') + "\"";
    decimals += sep + (null ? std::string("null") : "\"" + std::to_string(r) + ".25\"");
    fixed += sep + std::string("\"abc\"");
    stamps += sep + std::to_string(int64_t{1700000000} + r);
    nulls += sep + std::string("null");
  }
  auto column = [](const std::shared_ptr<arrow::DataType>& type, const std::string& values) {
    return arrow::json::ArrayFromJSONString(type, "[" + values + "]").ValueOrDie();
  };
  auto schema = arrow::schema({arrow::field("i8", arrow::int8()),
                               arrow::field("i64", arrow::int64()),
                               arrow::field("bool", arrow::boolean()),
                               arrow::field("f64", arrow::float64()),
                               arrow::field("utf8", arrow::utf8()),
                               arrow::field("large_binary", arrow::large_binary()),
                               arrow::field("decimal", arrow::decimal128(10, 2)),
                               arrow::field("fixed", arrow::fixed_size_binary(3)),
                               arrow::field("timestamp", arrow::timestamp(arrow::TimeUnit::SECOND)),
                               arrow::field("null", arrow::null())});
  std::string small_ints;
  for (int r = 0; r < rows; ++r) small_ints += (r == 0 ? "" : ",") + std::to_string(r % 100);
  auto covered = arrow::RecordBatch::Make(
      schema, rows,
      {column(arrow::int8(), small_ints), column(arrow::int64(), ints),
       column(arrow::boolean(), bools), column(arrow::float64(), doubles),
       column(arrow::utf8(), words), column(arrow::large_binary(), blobs),
       column(arrow::decimal128(10, 2), decimals), column(arrow::fixed_size_binary(3), fixed),
       column(arrow::timestamp(arrow::TimeUnit::SECOND), stamps), column(arrow::null(), nulls)});
  ASSERT_OK(covered->ValidateFull());
  for (auto [begin, end] : Ranges(rows)) {
    SCOPED_TRACE("rows " + std::to_string(begin) + " to " + std::to_string(end));
    auto part = covered->Slice(begin, end - begin);
    ASSERT_OK_AND_ASSIGN(int64_t referenced, arrow::util::ReferencedBufferSize(*part));
    EXPECT_EQ(RowBytes::ReferencedBytes(*part), referenced);
  }
  for (const auto& [name, batch, exact] : Batches()) {
    SCOPED_TRACE(name);
    for (auto [begin, end] : Ranges(batch->num_rows())) {
      auto part = batch->Slice(begin, end - begin);
      const int64_t walked = RowBytes::ReferencedBytes(*part);
      if (walked < 0) continue;  // a type it leaves to Arrow
      ASSERT_OK_AND_ASSIGN(int64_t referenced, arrow::util::ReferencedBufferSize(*part));
      EXPECT_EQ(walked, referenced) << "rows " << begin << " to " << end;
    }
  }
  auto list = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("l", arrow::list(arrow::int32()))}), 2,
      {column(arrow::list(arrow::int32()), "[1, 2], [3]")});
  EXPECT_EQ(RowBytes::ReferencedBytes(*list), -1);
}

// Computed independently, row by row through the typed arrays: 8 bytes of id, the offset, the
// value bytes, and a validity bit per row (plus the child's, for lists).
int64_t PerRowReference(const arrow::RecordBatch& batch, int64_t begin, int64_t end) {
  const int64_t rows = end - begin;
  int64_t bytes = 8 * rows;
  const arrow::Array& column = *batch.column(1);
  if (column.null_bitmap_data() != nullptr) bytes += (rows + 7) / 8;
  if (column.type_id() == arrow::Type::STRING) {
    const auto& strings = static_cast<const arrow::StringArray&>(column);
    for (int64_t i = begin; i < end; ++i) bytes += 4 + strings.value_length(i);
  } else if (column.type_id() == arrow::Type::LARGE_BINARY) {
    const auto& binaries = static_cast<const arrow::LargeBinaryArray&>(column);
    for (int64_t i = begin; i < end; ++i) bytes += 8 + binaries.value_length(i);
  } else if (column.type_id() == arrow::Type::LIST) {
    const auto& lists = static_cast<const arrow::ListArray&>(column);
    int64_t elements = 0;
    for (int64_t i = begin; i < end; ++i) {
      bytes += 4;
      const std::shared_ptr<arrow::Array> slice = lists.value_slice(i);
      const auto& values = static_cast<const arrow::StringArray&>(*slice);
      for (int64_t e = 0; e < values.length(); ++e) bytes += 4 + values.value_length(e);
      elements += values.length();
    }
    if (lists.values()->null_bitmap_data() != nullptr) bytes += (elements + 7) / 8;
  } else {
    ADD_FAILURE() << "no reference for " << column.type()->ToString();
  }
  return bytes;
}

TEST(RowBytes, EqualsAPerRowReferenceForStringsBinariesAndLists) {
  for (auto kind : {testing::WideKind::kString, testing::WideKind::kLargeBinary,
                    testing::WideKind::kList}) {
    SCOPED_TRACE(testing::ToString(kind));
    ASSERT_OK_AND_ASSIGN(auto whole, testing::MakeWideBatch(kind, 100, 1000, 5000));
    for (const auto& batch : {whole, whole->Slice(13, 900)}) {
      for (auto [begin, end] : Ranges(batch->num_rows())) {
        EXPECT_EQ(RowBytes::RangeBytes(*batch, begin, end), PerRowReference(*batch, begin, end))
            << "rows " << begin << " to " << end;
      }
    }
  }
}

// RowsWithin is the longest run from `begin` whose bytes fit, as a row-by-row scan finds it.
TEST(RowBytes, RowsWithinIsTheLongestRunThatFits) {
  ASSERT_OK_AND_ASSIGN(auto batch,
                       testing::MakeWideBatch(testing::WideKind::kString, 0, 1200, 20000));
  std::mt19937_64 random(11);
  for (int i = 0; i < 200; ++i) {
    const int64_t begin = static_cast<int64_t>(random() % 1200);
    const int64_t max_rows = static_cast<int64_t>(random() % static_cast<uint64_t>(1201 - begin));
    const int64_t budget = static_cast<int64_t>(random() % 200000) - 10;
    int64_t expected = 0;
    while (expected < max_rows &&
           RowBytes::RangeBytes(*batch, begin, begin + expected + 1) <= budget) {
      ++expected;
    }
    EXPECT_EQ(RowBytes::RowsWithin(*batch, begin, max_rows, budget), expected)
        << "from row " << begin << ", at most " << max_rows << " rows, " << budget << " bytes";
  }
}

TEST(RowBytes, TellsFixedWidthSchemasAndDictionaries) {
  using testing::TestSchema;
  using testing::TestSchemaKind;
  EXPECT_TRUE(RowBytes::FixedWidth(*TestSchema(TestSchemaKind::kPrimitive)));
  EXPECT_FALSE(RowBytes::HasDictionaries(*TestSchema(TestSchemaKind::kPrimitive)));
  for (auto kind : {TestSchemaKind::kStrings, TestSchemaKind::kNestedLists,
                    TestSchemaKind::kStruct, TestSchemaKind::kDictionary}) {
    EXPECT_FALSE(RowBytes::FixedWidth(*TestSchema(kind))) << testing::ToString(kind);
  }
  EXPECT_TRUE(RowBytes::HasDictionaries(*TestSchema(TestSchemaKind::kDictionary)));
  EXPECT_TRUE(RowBytes::HasDictionaries(*TestSchema(TestSchemaKind::kNestedDictionary)));
  EXPECT_FALSE(RowBytes::HasDictionaries(*TestSchema(TestSchemaKind::kStrings)));
}

}  // namespace
}  // namespace sabot
