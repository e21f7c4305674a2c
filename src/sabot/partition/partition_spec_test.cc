#include "sabot/partition/partition_spec.h"

#include <arrow/api.h>

#include "sabot/partition/partition_testing_internal.h"

namespace sabot {
namespace {

using arrow::compute::NullPlacement;
using testing::Json;

std::shared_ptr<arrow::RecordBatch> Bounds(const std::vector<std::string>& names,
                                           const arrow::ArrayVector& columns) {
  arrow::FieldVector fields;
  for (size_t i = 0; i < names.size(); ++i) {
    fields.push_back(arrow::field(names[i], columns[i]->type()));
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), columns[0]->length(), columns);
}

void ExpectRoundTrip(const PartitionSpec& spec) {
  ASSERT_OK_AND_ASSIGN(auto bytes, spec.Serialize());
  ASSERT_OK_AND_ASSIGN(auto back, PartitionSpec::Deserialize(*bytes));
  EXPECT_TRUE(back->Equals(spec)) << spec.ToString() << " came back as " << back->ToString();
  EXPECT_EQ(back->ToString(), spec.ToString());
}

TEST(PartitionSpec, EveryEdgeTypeRoundTrips) {
  ASSERT_OK_AND_ASSIGN(auto forward, PartitionSpec::Forward(3));
  ASSERT_OK_AND_ASSIGN(auto broadcast, PartitionSpec::Broadcast(kMaxPartitions));
  ASSERT_OK_AND_ASSIGN(auto rebalance, PartitionSpec::Rebalance(1));
  ASSERT_OK_AND_ASSIGN(auto hash,
                       PartitionSpec::Hash({"b", "a", "key with spaces, and comma"}, 64));
  auto bounds = Bounds(
      {"k", "s"}, {Json(arrow::int64(), "[1, 1, 5]"), Json(arrow::utf8(), R"(["a", "b", ""])")});
  ASSERT_OK_AND_ASSIGN(auto range, PartitionSpec::Range(bounds, NullPlacement::AtStart));
  for (const auto& spec : {forward, broadcast, rebalance, hash, range}) ExpectRoundTrip(*spec);
  EXPECT_EQ(hash->ToString(), "HASH(keys=[b, a, key with spaces, and comma], partitions=64)");
  EXPECT_EQ(range->ToString(), "RANGE(keys=[k, s], partitions=4, boundaries=3, nulls=at_start)");
  EXPECT_EQ(range->num_partitions(), 4);
  EXPECT_EQ(range->key_columns(), (std::vector<std::string>{"k", "s"}));
  EXPECT_FALSE(hash->Equals(*range));
  ASSERT_OK_AND_ASSIGN(auto hash_ba,
                       PartitionSpec::Hash({"a", "b", "key with spaces, and comma"}, 64));
  EXPECT_FALSE(hash->Equals(*hash_ba));
}

TEST(PartitionSpec, RangeRoundTripsEveryBoundaryType) {
  const std::vector<std::pair<std::shared_ptr<arrow::DataType>, std::string>> cases = {
      {arrow::int8(), "[-3, 4]"},
      {arrow::uint64(), "[1, 18446744073709551615]"},
      {arrow::float32(), "[-1.5, 2.5]"},
      {arrow::boolean(), "[false, true]"},
      {arrow::large_utf8(), R"(["a", "b"])"},
      {arrow::binary(), R"(["a", "ab"])"},
      {arrow::fixed_size_binary(2), R"(["aa", "ab"])"},
      {arrow::date32(), "[1, 2]"},
      {arrow::time64(arrow::TimeUnit::NANO), "[1, 2]"},
      {arrow::timestamp(arrow::TimeUnit::MILLI, "Europe/Paris"), "[1, 2]"},
      {arrow::decimal128(10, 2), R"(["-1.50", "3.25"])"},
  };
  for (const auto& [type, json] : cases) {
    ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Range(Bounds({"k"}, {Json(type, json)})));
    ExpectRoundTrip(*spec);
  }
}

TEST(PartitionSpec, EdgeTypeNames) {
  for (EdgeType type : {EdgeType::kForward, EdgeType::kHash, EdgeType::kBroadcast,
                        EdgeType::kRebalance, EdgeType::kRange}) {
    ASSERT_OK_AND_ASSIGN(EdgeType parsed, ParseEdgeType(EdgeTypeName(type)));
    EXPECT_EQ(parsed, type);
  }
  ASSERT_RAISES_WITH(Invalid, "unknown edge type 'hash'", ParseEdgeType("hash").status());
}

TEST(PartitionSpec, BadCounts) {
  ASSERT_RAISES_WITH(Invalid, "HASH number of partitions must be between 1 and 65536, got 0",
                     PartitionSpec::Hash({"k"}, 0).status());
  ASSERT_RAISES_WITH(Invalid, "got -4", PartitionSpec::Forward(-4).status());
  ASSERT_RAISES_WITH(Invalid, "got 10000000000", PartitionSpec::Broadcast(10000000000).status());
  ASSERT_RAISES_WITH(Invalid, "got 65537", PartitionSpec::Rebalance(kMaxPartitions + 1).status());
}

TEST(PartitionSpec, BadKeys) {
  ASSERT_RAISES_WITH(Invalid, "HASH partitioning needs at least one key column",
                     PartitionSpec::Hash({}, 4).status());
  ASSERT_RAISES_WITH(Invalid, "key column 'a' is listed twice",
                     PartitionSpec::Hash({"a", "b", "a"}, 4).status());
  ASSERT_RAISES_WITH(Invalid, "key column name is empty", PartitionSpec::Hash({""}, 4).status());
  ASSERT_RAISES_WITH(Invalid, "FORWARD partitioning takes no key columns, got 'x'",
                     PartitionSpec::Make(EdgeType::kForward, {"x"}, 2).status());
  ASSERT_RAISES_WITH(
      Invalid, "HASH partitioning takes no range boundaries",
      PartitionSpec::Make(EdgeType::kHash, {"k"}, 2, Bounds({"k"}, {Json(arrow::int64(), "[1]")}))
          .status());
}

TEST(PartitionSpec, BadBoundaries) {
  ASSERT_RAISES_WITH(Invalid, "RANGE partitioning needs boundaries",
                     PartitionSpec::Make(EdgeType::kRange, {"k"}, 2).status());
  ASSERT_RAISES_WITH(
      Invalid, "needs 2 boundary rows, got 1",
      PartitionSpec::Make(EdgeType::kRange, {"k"}, 3, Bounds({"k"}, {Json(arrow::int64(), "[1]")}))
          .status());
  ASSERT_RAISES_WITH(
      Invalid, "range boundaries are not sorted: row 2 is less than row 1",
      PartitionSpec::Range(Bounds({"k"}, {Json(arrow::int64(), "[1, 5, 3]")})).status());
  ASSERT_RAISES_WITH(
      Invalid, "not sorted: row 1 is less than row 0",
      PartitionSpec::Range(Bounds({"k"}, {Json(arrow::utf8(), R"(["b", "a"])")})).status());
  ASSERT_RAISES_WITH(Invalid, "not sorted: row 2 is less than row 1",
                     PartitionSpec::Range(Bounds({"a", "b"}, {Json(arrow::int64(), "[1, 2, 2]"),
                                                              Json(arrow::int64(), "[9, 5, 4]")}))
                         .status());
  ASSERT_RAISES_WITH(
      Invalid, "range boundary column 'k' has 1 null(s)",
      PartitionSpec::Range(Bounds({"k"}, {Json(arrow::int64(), "[1, null]")})).status());
  ASSERT_RAISES_WITH(
      TypeError, "range boundary column 'k' has type list<item: int8>",
      PartitionSpec::Range(Bounds({"k"}, {Json(arrow::list(arrow::int8()), "[[1], [2]]")}))
          .status());
  ASSERT_RAISES_WITH(
      Invalid, "range boundary column 0 is named 'x' but key column 0 is 'k'",
      PartitionSpec::Make(EdgeType::kRange, {"k"}, 2, Bounds({"x"}, {Json(arrow::int64(), "[1]")}))
          .status());
  ASSERT_RAISES_WITH(Invalid, "range boundaries have 2 columns but there are 1 key columns",
                     PartitionSpec::Make(EdgeType::kRange, {"k"}, 2,
                                         Bounds({"k", "j"}, {Json(arrow::int64(), "[1]"),
                                                             Json(arrow::int64(), "[1]")}))
                         .status());
  // Equal neighbours are allowed (an empty partition); multi-column ties broken by later columns.
  ASSERT_OK(
      PartitionSpec::Range(Bounds({"a", "b"}, {Json(arrow::int64(), "[1, 1, 1, 2]"),
                                               Json(arrow::utf8(), R"(["a", "b", "b", "a"])")}))
          .status());
}

TEST(PartitionSpec, DeserializedSpecOutlivesItsBytes) {
  auto bounds = Bounds({"s"}, {Json(arrow::utf8(), R"(["apple", "banana", "cherry"])")});
  ASSERT_OK_AND_ASSIGN(auto spec, PartitionSpec::Range(bounds));
  ASSERT_OK_AND_ASSIGN(auto bytes, spec->Serialize());
  auto copy = std::make_unique<std::string>(bytes->ToString());
  auto view = std::make_unique<arrow::Buffer>(*copy);
  ASSERT_OK_AND_ASSIGN(auto back, PartitionSpec::Deserialize(*view));
  // Scribble over and free the bytes: the spec must not refer to them (ASan would notice).
  std::fill(copy->begin(), copy->end(), 'x');
  view.reset();
  copy.reset();
  ASSERT_OK(back->boundaries()->ValidateFull());
  EXPECT_TRUE(back->Equals(*spec));
}

TEST(PartitionSpec, DeserializeRejectsGarbage) {
  const std::string garbage = "definitely not an arrow stream";
  arrow::Buffer bytes(garbage);
  ASSERT_RAISES_WITH(Invalid, "not a serialized PartitionSpec",
                     PartitionSpec::Deserialize(bytes).status());
  arrow::Buffer empty("");
  ASSERT_RAISES_WITH(Invalid, "not a serialized PartitionSpec",
                     PartitionSpec::Deserialize(empty).status());
  // A good stream reads back; the same stream cut in half does not.
  ASSERT_OK_AND_ASSIGN(auto forward, PartitionSpec::Forward(2));
  ASSERT_OK_AND_ASSIGN(auto good, forward->Serialize());
  ASSERT_OK_AND_ASSIGN(auto back, PartitionSpec::Deserialize(*good));
  EXPECT_TRUE(back->Equals(*forward));
  auto cut = arrow::SliceBuffer(good, 0, good->size() / 2);
  EXPECT_FALSE(PartitionSpec::Deserialize(*cut).ok());
}

}  // namespace
}  // namespace sabot
