#include "sabot/partition/range_partitioner.h"

#include <cmath>
#include <optional>
#include <random>
#include <tuple>

#include <arrow/api.h>

#include "sabot/partition/partition_testing_internal.h"

namespace sabot {
namespace {

using arrow::compute::NullPlacement;
using testing::Json;
using testing::ReferenceSplit;

std::shared_ptr<arrow::RecordBatch> MakeBatch(const std::vector<std::string>& names,
                                              const arrow::ArrayVector& columns) {
  arrow::FieldVector fields;
  for (size_t i = 0; i < names.size(); ++i) {
    fields.push_back(arrow::field(names[i], columns[i]->type()));
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), columns[0]->length(), columns);
}

std::vector<PartitionId> Ids(const std::shared_ptr<const PartitionSpec>& spec,
                             const std::shared_ptr<arrow::RecordBatch>& batch) {
  auto partitioner =
      RangePartitioner::Make(spec, batch->schema(), 0, arrow::default_memory_pool()).ValueOrDie();
  std::vector<PartitionId> ids(static_cast<size_t>(batch->num_rows()));
  arrow::Status st = partitioner->ComputePartitionIds(*batch, ids.data());
  EXPECT_TRUE(st.ok()) << st.ToString();
  return ids;
}

std::vector<PartitionId> IdsFor(const std::shared_ptr<arrow::DataType>& type,
                                const std::string& bounds, const std::string& keys,
                                NullPlacement placement = NullPlacement::AtEnd) {
  auto spec = PartitionSpec::Range(MakeBatch({"k"}, {Json(type, bounds)}), placement).ValueOrDie();
  return Ids(spec, MakeBatch({"k"}, {Json(type, keys)}));
}

using V = std::vector<PartitionId>;

TEST(RangePartitioner, IntervalsAreClosedBelowOpenAbove) {
  // Partitions: (-inf, 10) [10, 20) [20, 30) [30, +inf).
  EXPECT_EQ(IdsFor(arrow::int64(), "[10, 20, 30]", "[-100, 9, 10, 11, 19, 20, 29, 30, 31, 1000]"),
            (V{0, 0, 1, 1, 1, 2, 2, 3, 3, 3}));
  // Equal boundaries make an empty partition.
  EXPECT_EQ(IdsFor(arrow::int32(), "[5, 5, 7]", "[4, 5, 6, 7]"), (V{0, 2, 2, 3}));
  // One partition: no boundaries.
  EXPECT_EQ(IdsFor(arrow::int64(), "[]", "[1, null, -1]"), (V{0, 0, 0}));
}

TEST(RangePartitioner, NullPlacement) {
  EXPECT_EQ(IdsFor(arrow::int64(), "[10, 20]", "[null, 15, null]", NullPlacement::AtEnd),
            (V{2, 1, 2}));
  EXPECT_EQ(IdsFor(arrow::int64(), "[10, 20]", "[null, 15, null]", NullPlacement::AtStart),
            (V{0, 1, 0}));
}

TEST(RangePartitioner, EveryKeyType) {
  EXPECT_EQ(IdsFor(arrow::uint64(), "[9223372036854775808]", "[1, 18446744073709551615]"),
            (V{0, 1}));
  EXPECT_EQ(IdsFor(arrow::int8(), "[-1, 1]", "[-128, -1, 0, 127]"), (V{0, 1, 1, 2}));
  EXPECT_EQ(IdsFor(arrow::boolean(), "[true]", "[false, true, null]"), (V{0, 1, 1}));
  EXPECT_EQ(IdsFor(arrow::utf8(), R"(["b", "bb"])", R"(["", "a", "b", "ba", "bb", "c"])"),
            (V{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(IdsFor(arrow::large_binary(), R"(["m"])", R"(["l", "m", "n"])"), (V{0, 1, 1}));
  EXPECT_EQ(IdsFor(arrow::fixed_size_binary(2), R"(["bb"])", R"(["ba", "bb", "zz"])"),
            (V{0, 1, 1}));
  EXPECT_EQ(IdsFor(arrow::date32(), "[100]", "[99, 100]"), (V{0, 1}));
  EXPECT_EQ(IdsFor(arrow::timestamp(arrow::TimeUnit::MICRO), "[-5]", "[-6, -5]"), (V{0, 1}));
  EXPECT_EQ(IdsFor(arrow::time32(arrow::TimeUnit::SECOND), "[60]", "[59, 61]"), (V{0, 1}));
  EXPECT_EQ(IdsFor(arrow::decimal128(10, 2), R"(["-1.00", "2.50"])",
                   R"(["-1.01", "-1.00", "0.00", "2.49", "2.50", "99999999.99"])"),
            (V{0, 1, 1, 1, 2, 2}));
  // Bytes compare unsigned: 0xC3 (start of "é") sorts after ASCII.
  EXPECT_EQ(IdsFor(arrow::utf8(), R"(["z"])", R"(["é", "y"])"), (V{1, 0}));
}

TEST(RangePartitioner, FloatsOrderNaNLastAndZeroesEqual) {
  arrow::DoubleBuilder keys;
  ASSERT_OK(keys.AppendValues({-0.0, 0.0, std::nan(""), INFINITY, -INFINITY, 0.5}));
  ASSERT_OK_AND_ASSIGN(auto key_array, keys.Finish());
  auto spec =
      PartitionSpec::Range(MakeBatch({"k"}, {Json(arrow::float64(), "[0.0, 1.0]")})).ValueOrDie();
  EXPECT_EQ(Ids(spec, MakeBatch({"k"}, {key_array})), (V{1, 1, 2, 2, 0, 1}));
}

TEST(RangePartitioner, MultiColumnKeysAreLexicographic) {
  auto bounds = MakeBatch(
      {"a", "b"}, {Json(arrow::int64(), "[1, 1, 2]"), Json(arrow::utf8(), R"(["m", "t", "a"])")});
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Range(bounds));
  auto keys = MakeBatch({"a", "b"}, {Json(arrow::int64(), "[0, 1, 1, 1, 1, 1, 2, 2, 3, null, 1]"),
                                     Json(arrow::utf8(), R"(["z", "a", "m", "n", "t", "u", "",
                                                            "a", "", "a", null])")});
  EXPECT_EQ(Ids(spec, keys), (V{0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 2}));
}

// A per-row scalar reference for (int64, string) keys with nulls: count boundaries <= key by a
// linear scan, with std::optional ordering nulls first or last.
TEST(RangePartitioner, MatchesScalarReferenceOnRandomKeys) {
  std::mt19937_64 rng(3);
  for (NullPlacement placement : {NullPlacement::AtEnd, NullPlacement::AtStart}) {
    using Key = std::tuple<int64_t, std::string>;
    std::vector<Key> bounds;
    for (int i = 0; i < 40; ++i) {
      bounds.emplace_back(static_cast<int64_t>(rng() % 20),
                          std::string(1, static_cast<char>('a' + rng() % 6)));
    }
    std::sort(bounds.begin(), bounds.end());
    arrow::Int64Builder ba;
    arrow::StringBuilder bb;
    for (const auto& [a, b] : bounds) {
      ASSERT_OK(ba.Append(a));
      ASSERT_OK(bb.Append(b));
    }
    auto bound_batch = MakeBatch({"a", "b"}, {ba.Finish().ValueOrDie(), bb.Finish().ValueOrDie()});
    ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Range(bound_batch, placement));

    const int64_t rows = 4000;
    arrow::Int64Builder ka;
    arrow::StringBuilder kb;
    std::vector<std::optional<int64_t>> a_values;
    std::vector<std::optional<std::string>> b_values;
    for (int64_t i = 0; i < rows; ++i) {
      if (rng() % 10 == 0) {
        a_values.push_back(std::nullopt);
        ASSERT_OK(ka.AppendNull());
      } else {
        a_values.push_back(static_cast<int64_t>(rng() % 22) - 1);
        ASSERT_OK(ka.Append(*a_values.back()));
      }
      if (rng() % 10 == 0) {
        b_values.push_back(std::nullopt);
        ASSERT_OK(kb.AppendNull());
      } else {
        b_values.push_back(std::string(1 + rng() % 2, static_cast<char>('a' + rng() % 7)));
        ASSERT_OK(kb.Append(*b_values.back()));
      }
    }
    auto key_batch = MakeBatch({"a", "b"}, {ka.Finish().ValueOrDie(), kb.Finish().ValueOrDie()});
    // Compare one column: -1, 0, 1; null vs value per placement.
    auto cmp = [&](const auto& key, const auto& bound) -> int {
      if (!key.has_value()) return placement == NullPlacement::AtEnd ? 1 : -1;
      if (*key < bound) return -1;
      if (bound < *key) return 1;
      return 0;
    };
    auto ids = Ids(spec, key_batch);
    for (int64_t i = 0; i < rows; ++i) {
      PartitionId expected = 0;
      for (const auto& [ba_value, bb_value] : bounds) {
        int c = cmp(a_values[i], ba_value);
        if (c == 0) c = cmp(b_values[i], bb_value);
        if (c >= 0) ++expected;  // boundary <= key
      }
      ASSERT_EQ(ids[i], expected) << "row " << i;
    }
    // And the partitioned output is the reference split of those ids.
    ASSERT_OK_AND_ASSIGN(auto partitioner, MakePartitioner(spec, key_batch->schema(), 0));
    ASSERT_OK_AND_ASSIGN(auto parts, partitioner->Partition(key_batch->Slice(0)));
    auto expected = ReferenceSplit(key_batch, ids, spec->num_partitions());
    for (int32_t p = 0; p < spec->num_partitions(); ++p) {
      if (expected[p] == nullptr) {
        EXPECT_EQ(parts.batches[p], nullptr);
      } else {
        ASSERT_NE(parts.batches[p], nullptr);
        ASSERT_BATCHES_EQUAL(*expected[p], *parts.batches[p]);
      }
    }
  }
}

TEST(RangePartitioner, SlicedInput) {
  auto keys = Json(arrow::int64(), "[100, 1, 15, 25, 5, 100]");
  EXPECT_EQ(IdsFor(arrow::int64(), "[10, 20]", "[1, 15, 25, 5]"), (V{0, 1, 2, 0}));
  auto spec =
      PartitionSpec::Range(MakeBatch({"k"}, {Json(arrow::int64(), "[10, 20]")})).ValueOrDie();
  EXPECT_EQ(Ids(spec, MakeBatch({"k"}, {keys->Slice(1, 4)})), (V{0, 1, 2, 0}));
}

TEST(RangePartitioner, BindingErrors) {
  auto spec =
      PartitionSpec::Range(MakeBatch({"k"}, {Json(arrow::int64(), "[10, 20]")})).ValueOrDie();
  auto int32_schema = arrow::schema({arrow::field("k", arrow::int32())});
  ASSERT_RAISES_WITH(TypeError,
                     "key column 'k' has type int32 but its range boundaries have type int64",
                     MakePartitioner(spec, int32_schema, 0).status());
  auto other_schema = arrow::schema({arrow::field("j", arrow::int64())});
  ASSERT_RAISES_WITH(Invalid, "key column 'k' is not in the input schema",
                     MakePartitioner(spec, other_schema, 0).status());
  auto list_schema = arrow::schema({arrow::field("k", arrow::list(arrow::int64()))});
  ASSERT_RAISES_WITH(TypeError, "key column 'k' has type list<item: int64>, which RANGE",
                     MakePartitioner(spec, list_schema, 0).status());
  EXPECT_FALSE(IsRangeKeyType(*arrow::dictionary(arrow::int8(), arrow::utf8())));
  EXPECT_TRUE(IsRangeKeyType(*arrow::decimal128(3, 1)));
}

}  // namespace
}  // namespace sabot
