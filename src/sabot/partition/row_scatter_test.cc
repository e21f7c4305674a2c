#include "sabot/partition/row_scatter.h"

#include <random>

#include <arrow/api.h>

#include "sabot/partition/partition_testing_internal.h"

namespace sabot {
namespace {

using testing::Json;
using testing::ReferenceSplit;

// A batch with a column of every scatter kernel: fixed width of several byte widths, bool,
// var-binary (32- and 64-bit offsets), fixed_size_binary, decimal, dictionary, and nested types
// that go through the Take fallback. Every column has nulls.
std::shared_ptr<arrow::RecordBatch> MixedBatch(int64_t rows) {
  std::mt19937_64 rng(7);
  arrow::Int8Builder i8;
  arrow::Int32Builder i32;
  arrow::Int64Builder i64;
  arrow::DoubleBuilder f64;
  arrow::BooleanBuilder b;
  arrow::StringBuilder s;
  arrow::LargeBinaryBuilder lb;
  arrow::FixedSizeBinaryBuilder fsb(arrow::fixed_size_binary(5));
  arrow::Decimal128Builder dec(arrow::decimal128(20, 3));
  arrow::Int16Builder dict_indices;
  arrow::ListBuilder list(arrow::default_memory_pool(), std::make_shared<arrow::Int32Builder>());
  auto* list_values = static_cast<arrow::Int32Builder*>(list.value_builder());
  for (int64_t i = 0; i < rows; ++i) {
    const bool null = rng() % 5 == 0;
    const int64_t v = static_cast<int64_t>(rng() % 1000);
    if (null) {
      EXPECT_TRUE(i8.AppendNull().ok() && i32.AppendNull().ok() && i64.AppendNull().ok() &&
                  f64.AppendNull().ok() && b.AppendNull().ok() && s.AppendNull().ok() &&
                  lb.AppendNull().ok() && fsb.AppendNull().ok() && dec.AppendNull().ok() &&
                  dict_indices.AppendNull().ok() && list.AppendNull().ok());
      continue;
    }
    EXPECT_TRUE(i8.Append(static_cast<int8_t>(v)).ok());
    EXPECT_TRUE(i32.Append(static_cast<int32_t>(v * 3)).ok());
    EXPECT_TRUE(i64.Append(v * 1000003).ok());
    EXPECT_TRUE(f64.Append(static_cast<double>(v) / 7).ok());
    EXPECT_TRUE(b.Append(v % 3 == 0).ok());
    EXPECT_TRUE(s.Append(std::string(static_cast<size_t>(v % 17), 's') + std::to_string(i)).ok());
    EXPECT_TRUE(lb.Append(std::to_string(v)).ok());
    EXPECT_TRUE(fsb.Append(std::to_string(10000 + v % 90000).substr(0, 5)).ok());
    EXPECT_TRUE(dec.Append(arrow::Decimal128(v * 12345 - 6000000)).ok());
    EXPECT_TRUE(dict_indices.Append(static_cast<int16_t>(v % 4)).ok());
    EXPECT_TRUE(list.Append().ok());
    for (int k = 0; k < v % 3; ++k) EXPECT_TRUE(list_values->Append(k).ok());
  }
  auto dict_type = arrow::dictionary(arrow::int16(), arrow::utf8());
  auto dict =
      std::make_shared<arrow::DictionaryArray>(dict_type, dict_indices.Finish().ValueOrDie(),
                                               Json(arrow::utf8(), R"(["w", "x", "y", "z"])"));
  auto list_array = list.Finish().ValueOrDie();
  auto struct_array =
      arrow::StructArray::Make({list_array}, {arrow::field("l", list_array->type())}).ValueOrDie();
  arrow::ArrayVector arrays = {i8.Finish().ValueOrDie(),
                               i32.Finish().ValueOrDie(),
                               i64.Finish().ValueOrDie(),
                               f64.Finish().ValueOrDie(),
                               b.Finish().ValueOrDie(),
                               s.Finish().ValueOrDie(),
                               lb.Finish().ValueOrDie(),
                               fsb.Finish().ValueOrDie(),
                               dec.Finish().ValueOrDie(),
                               dict,
                               list_array,
                               struct_array};
  arrow::FieldVector fields;
  for (size_t c = 0; c < arrays.size(); ++c) {
    fields.push_back(arrow::field("c" + std::to_string(c), arrays[c]->type()));
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), rows, arrays);
}

void ExpectMatchesReference(const std::shared_ptr<arrow::RecordBatch>& batch,
                            const std::vector<PartitionId>& ids, int32_t n) {
  ASSERT_OK_AND_ASSIGN(auto scatter, RowScatter::Make(n, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto parts, scatter->Scatter(batch, ids.data()));
  auto expected = ReferenceSplit(batch, ids, n);
  ASSERT_EQ(parts.size(), static_cast<size_t>(n));
  for (int32_t p = 0; p < n; ++p) {
    if (expected[p] == nullptr) {
      EXPECT_EQ(parts[p], nullptr) << "partition " << p;
      continue;
    }
    ASSERT_NE(parts[p], nullptr) << "partition " << p;
    ASSERT_OK(parts[p]->ValidateFull());
    ASSERT_BATCHES_EQUAL(*expected[p], *parts[p]);
    for (int c = 0; c < parts[p]->num_columns(); ++c) {
      // Null counts set by the scatter agree with the data.
      EXPECT_EQ(parts[p]->column(c)->null_count(), expected[p]->column(c)->null_count());
    }
  }
}

TEST(RowScatter, EveryColumnKindMatchesReference) {
  auto batch = MixedBatch(3000);
  std::mt19937 rng(1);
  for (int32_t n : {2, 7, 64}) {
    std::vector<PartitionId> ids(3000);
    for (auto& id : ids) id = static_cast<PartitionId>(rng() % n);
    ExpectMatchesReference(batch, ids, n);
  }
}

// Fixed-width columns without nulls take the scatter by destination, several 8-byte columns at
// once at few partitions, a chunk of rows at a time: more rows than one chunk (4096), 1 to 6
// 8-byte columns (groups of up to 4 and a remainder) beside 4- and 2-byte ones, sliced input.
TEST(RowScatter, ManyFixedWidthColumnsOverSeveralChunksMatchReference) {
  const int64_t rows = 9000;
  std::mt19937_64 rng(11);
  arrow::ArrayVector arrays;
  arrow::FieldVector fields;
  auto add = [&](const std::shared_ptr<arrow::DataType>& type) {
    std::shared_ptr<arrow::Array> array;
    if (type->id() == arrow::Type::INT16) {
      arrow::Int16Builder builder;
      for (int64_t i = 0; i < rows; ++i) {
        EXPECT_TRUE(builder.Append(static_cast<int16_t>(rng())).ok());
      }
      array = builder.Finish().ValueOrDie();
    } else if (type->id() == arrow::Type::INT32) {
      arrow::Int32Builder builder;
      for (int64_t i = 0; i < rows; ++i) {
        EXPECT_TRUE(builder.Append(static_cast<int32_t>(rng())).ok());
      }
      array = builder.Finish().ValueOrDie();
    } else {
      arrow::Int64Builder builder;
      for (int64_t i = 0; i < rows; ++i) {
        EXPECT_TRUE(builder.Append(static_cast<int64_t>(rng())).ok());
      }
      array = builder.Finish().ValueOrDie();
    }
    fields.push_back(arrow::field("c" + std::to_string(arrays.size()), type));
    arrays.push_back(std::move(array));
  };
  for (int c = 0; c < 6; ++c) {
    add(arrow::int64());
    if (c == 2) add(arrow::int32());
    if (c == 4) add(arrow::int16());
  }
  auto full = arrow::RecordBatch::Make(arrow::schema(fields), rows, arrays);
  for (int eight_byte_columns : {1, 3, 4, 5, 6}) {
    std::vector<int> keep;
    int seen = 0;
    for (int c = 0; c < full->num_columns(); ++c) {
      const bool eight = full->column(c)->type()->id() == arrow::Type::INT64;
      if (!eight || seen++ < eight_byte_columns) keep.push_back(c);
    }
    ASSERT_OK_AND_ASSIGN(auto selected, full->SelectColumns(keep));
    auto batch = selected->Slice(5, rows - 11);
    for (int32_t n : {2, 16, 17, 64, 512}) {
      std::vector<PartitionId> ids(static_cast<size_t>(batch->num_rows()));
      for (auto& id : ids) id = static_cast<PartitionId>(rng() % static_cast<uint64_t>(n));
      ExpectMatchesReference(batch, ids, n);
    }
  }
}

// Batches whose fixed-width output outgrows the cache are write-combined
// (write_combining_scatter.h): every kind of column beside them still matches, sliced or not.
TEST(RowScatter, LargeBatchesMatchReference) {
  const int64_t rows = 40000;
  auto batch = MixedBatch(rows);
  std::mt19937 rng(5);
  for (int32_t n : {2, 64, 1000}) {
    std::vector<PartitionId> ids(static_cast<size_t>(rows));
    for (auto& id : ids) id = static_cast<PartitionId>(rng() % n);
    ExpectMatchesReference(batch, ids, n);
    auto sliced = batch->Slice(3, rows - 10);
    ids.resize(static_cast<size_t>(sliced->num_rows()));
    ExpectMatchesReference(sliced, ids, n);
  }
}

TEST(RowScatter, SlicedInputMatchesReference) {
  auto batch = MixedBatch(1000)->Slice(13, 901);
  std::vector<PartitionId> ids(901);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<PartitionId>((i * 7919) % 5);
  ExpectMatchesReference(batch, ids, 5);
}

TEST(RowScatter, OrderWithinPartitionIsKeptAndSomePartitionsEmpty) {
  auto values = Json(arrow::int64(), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
  auto batch =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::int64())}), 10, {values});
  std::vector<PartitionId> ids = {3, 0, 3, 0, 0, 3, 3, 0, 3, 3};
  ASSERT_OK_AND_ASSIGN(auto scatter, RowScatter::Make(4, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto parts, scatter->Scatter(batch, ids.data()));
  EXPECT_EQ(parts[1], nullptr);
  EXPECT_EQ(parts[2], nullptr);
  EXPECT_TRUE(parts[0]->column(0)->Equals(*Json(arrow::int64(), "[1, 3, 4, 7]")));
  EXPECT_TRUE(parts[3]->column(0)->Equals(*Json(arrow::int64(), "[0, 2, 5, 6, 8, 9]")));
}

TEST(RowScatter, AllRowsToOnePartitionReturnTheInputItself) {
  auto batch = MixedBatch(100);
  std::vector<PartitionId> ids(100, 6);
  ASSERT_OK_AND_ASSIGN(auto scatter, RowScatter::Make(8, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto parts, scatter->Scatter(batch, ids.data()));
  for (int p = 0; p < 8; ++p) {
    if (p == 6) {
      EXPECT_EQ(parts[p].get(), batch.get());
    } else {
      EXPECT_EQ(parts[p], nullptr);
    }
  }
}

TEST(RowScatter, EmptyBatchGivesNoBatches) {
  auto batch = MixedBatch(10)->Slice(10, 0);
  ASSERT_OK_AND_ASSIGN(auto scatter, RowScatter::Make(3, arrow::default_memory_pool()));
  ASSERT_OK_AND_ASSIGN(auto parts, scatter->Scatter(batch, nullptr));
  ASSERT_EQ(parts.size(), 3u);
  for (const auto& part : parts) EXPECT_EQ(part, nullptr);
}

TEST(RowScatter, ScratchIsReusedAcrossBatchesOfDifferentSizes) {
  ASSERT_OK_AND_ASSIGN(auto scatter, RowScatter::Make(3, arrow::default_memory_pool()));
  for (int64_t rows : {500, 20, 2000, 1}) {
    auto batch = MixedBatch(rows);
    std::vector<PartitionId> ids(static_cast<size_t>(rows));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<PartitionId>(i % 3);
    ASSERT_OK_AND_ASSIGN(auto parts, scatter->Scatter(batch, ids.data()));
    auto expected = ReferenceSplit(batch, ids, 3);
    for (int p = 0; p < 3; ++p) {
      if (expected[p]) {
        ASSERT_BATCHES_EQUAL(*expected[p], *parts[p]);
      } else {
        EXPECT_EQ(parts[p], nullptr);
      }
    }
  }
}

TEST(RowScatter, BadInput) {
  ASSERT_RAISES_WITH(Invalid, "between 1 and", RowScatter::Make(0, arrow::default_memory_pool()));
  ASSERT_RAISES_WITH(Invalid, "between 1 and",
                     RowScatter::Make(kMaxPartitions + 1, arrow::default_memory_pool()));
  ASSERT_RAISES_WITH(Invalid, "memory pool", RowScatter::Make(4, nullptr));
  ASSERT_OK_AND_ASSIGN(auto scatter, RowScatter::Make(4, arrow::default_memory_pool()));
  auto batch = MixedBatch(5);
  std::vector<PartitionId> ids = {0, 1, 4, 2, 3};
  ASSERT_RAISES_WITH(Invalid, "row 2 has partition id 4, outside [0, 4)",
                     scatter->Scatter(batch, ids.data()));
  ids[2] = -1;
  ASSERT_RAISES_WITH(Invalid, "row 2 has partition id -1", scatter->Scatter(batch, ids.data()));
  ASSERT_RAISES_WITH(Invalid, "null batch", scatter->Scatter(nullptr, ids.data()));
}

TEST(RowScatter, AllEmptyStrings) {
  auto strings = Json(arrow::utf8(), R"(["", null, "", ""])");
  auto binaries = Json(arrow::large_binary(), R"(["", "", null, ""])");
  auto batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("s", arrow::utf8()), arrow::field("b", arrow::large_binary())}),
      4, {strings, binaries});
  std::vector<PartitionId> ids = {1, 0, 1, 0};
  ExpectMatchesReference(batch, ids, 2);
}

TEST(RowScatter, ScatterCountedUsesTheCallersHistogram) {
  ASSERT_OK_AND_ASSIGN(auto scatter, RowScatter::Make(3, arrow::default_memory_pool()));
  auto batch = MixedBatch(6);
  std::vector<PartitionId> ids = {2, 0, 2, 1, 0, 2};
  std::vector<int64_t> counts = {2, 1, 3};
  ASSERT_OK_AND_ASSIGN(auto parts, scatter->ScatterCounted(batch, ids.data(), counts.data()));
  auto expected = ReferenceSplit(batch, ids, 3);
  for (int p = 0; p < 3; ++p) ASSERT_BATCHES_EQUAL(*expected[p], *parts[p]);
  std::vector<int64_t> wrong_total = {2, 1, 2};
  ASSERT_RAISES_WITH(Invalid, "add up to 5, not the batch's 6",
                     scatter->ScatterCounted(batch, ids.data(), wrong_total.data()));
  std::vector<int64_t> negative = {4, -1, 3};
  ASSERT_RAISES_WITH(Invalid, "partition 1 has a negative row count -1",
                     scatter->ScatterCounted(batch, ids.data(), negative.data()));
  std::vector<int64_t> all_in_two = {0, 0, 6};
  std::vector<PartitionId> twos(6, 2);
  ASSERT_OK_AND_ASSIGN(auto same, scatter->ScatterCounted(batch, twos.data(), all_in_two.data()));
  EXPECT_EQ(same[2].get(), batch.get());
}

}  // namespace
}  // namespace sabot
