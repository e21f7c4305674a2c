#include "sabot/dataflow/grouped_aggregation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>
#include <arrow/datum.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include "sabot/dataflow/aggregation_testing.h"
#include "sabot/testing/assertions.h"

// Results are checked against the independent reference of aggregation_testing.h.

namespace sabot {
namespace {

using testing::ExpectAggregation;
using testing::InputSchema;
using testing::RandomInput;
using testing::MaybeValue;
using testing::ValueAt;

// Every function over every value column it applies to, plus count(*).
std::vector<AggregateSpec> AllAggregates() {
  std::vector<AggregateSpec> specs = {{AggregateFunction::kCount, "", ""}};
  for (const char* column : {"v_int", "v_i32", "v_dbl"}) {
    for (AggregateFunction function :
         {AggregateFunction::kCount, AggregateFunction::kSum, AggregateFunction::kMin,
          AggregateFunction::kMax, AggregateFunction::kMean, AggregateFunction::kCountDistinct,
          AggregateFunction::kFirst, AggregateFunction::kLast,
          AggregateFunction::kApproxMedian}) {
      specs.push_back({function, column, ""});
    }
  }
  for (AggregateFunction function :
       {AggregateFunction::kCount, AggregateFunction::kMin, AggregateFunction::kMax,
        AggregateFunction::kCountDistinct, AggregateFunction::kFirst, AggregateFunction::kLast}) {
    specs.push_back({function, "v_str", ""});
  }
  specs.push_back({AggregateFunction::kFirst, "k_ts", ""});
  specs.push_back({AggregateFunction::kLast, "k_dict", ""});
  specs.push_back({AggregateFunction::kSum, "v_int", "total"});
  return specs;
}

// Checks `result` against the reference over `input`: its schema, the same groups (in any
// order), every aggregate equal.
void ExpectMatchesReference(const BoundAggregation& bound,
                            const std::vector<std::shared_ptr<arrow::RecordBatch>>& input,
                            const arrow::RecordBatch& result) {
  ASSERT_TRUE(result.schema()->Equals(*bound.output_schema()))
      << result.schema()->ToString() << "\nvs\n" << bound.output_schema()->ToString();
  ExpectAggregation(*bound.input_schema(), bound.keys(), bound.aggregates(), input, result);
}

const std::vector<std::vector<std::string>>& KeySets() {
  static const std::vector<std::vector<std::string>> sets = {
      {},
      {"k_int"},
      {"k_str"},
      {"k_ts"},
      {"k_dict"},
      {"k_int", "k_str", "k_ts", "k_dict"},
      {"k_dict", "k_int"}};
  return sets;
}

std::string Name(const std::vector<std::string>& keys) {
  std::string name = "[";
  for (const auto& key : keys) name += (name.size() > 1 ? "," : "") + key;
  return name + "]";
}

TEST(GroupedAggregationTest, EveryFunctionOverEveryKeySetMatchesTheReference) {
  auto input = RandomInput(11, 9);
  for (const auto& keys : KeySets()) {
    SCOPED_TRACE(Name(keys));
    ASSERT_OK_AND_ASSIGN(auto bound, BoundAggregation::Bind(InputSchema(), keys, AllAggregates()));
    ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound));
    for (const auto& batch : input) ASSERT_OK(aggregation->Consume(*batch));
    ASSERT_OK_AND_ASSIGN(auto result, aggregation->Finish());
    ExpectMatchesReference(*bound, input, *result);
  }
}

TEST(GroupedAggregationTest, OutputSchemaHasKeysThenAggregatesOfTheKernelsTypes) {
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BoundAggregation::Bind(InputSchema(), {"k_dict", "k_ts"},
                                              {{AggregateFunction::kCount, "", ""},
                                               {AggregateFunction::kSum, "v_i32", ""},
                                               {AggregateFunction::kMean, "v_int", "avg"},
                                               {AggregateFunction::kMin, "k_ts", ""},
                                               {AggregateFunction::kMax, "k_dict", ""},
                                               {AggregateFunction::kCountDistinct, "v_str", ""},
                                               {AggregateFunction::kFirst, "v_str", ""},
                                               {AggregateFunction::kLast, "k_ts", ""},
                                               {AggregateFunction::kApproxMedian, "v_i32", ""}}));
  auto expected = arrow::schema(
      {arrow::field("k_dict", arrow::dictionary(arrow::int32(), arrow::utf8())),
       arrow::field("k_ts", arrow::timestamp(arrow::TimeUnit::MILLI)),
       arrow::field("count", arrow::int64()), arrow::field("sum_v_i32", arrow::int64()),
       arrow::field("avg", arrow::float64()),
       arrow::field("min_k_ts", arrow::timestamp(arrow::TimeUnit::MILLI)),
       arrow::field("max_k_dict", arrow::utf8()),
       arrow::field("count_distinct_v_str", arrow::int64()),
       arrow::field("first_v_str", arrow::utf8()),
       arrow::field("last_k_ts", arrow::timestamp(arrow::TimeUnit::MILLI)),
       arrow::field("approx_median_v_i32", arrow::float64())});
  EXPECT_TRUE(bound->output_schema()->Equals(*expected)) << bound->output_schema()->ToString();
  EXPECT_EQ(bound->keys(), (std::vector<std::string>{"k_dict", "k_ts"}));
  EXPECT_EQ(bound->aggregates().size(), 9u);
  EXPECT_TRUE(bound->input_schema()->Equals(*InputSchema()));

  // Aggregates over key columns work as over any other column.
  auto input = RandomInput(5, 4);
  ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound));
  for (const auto& batch : input) ASSERT_OK(aggregation->Consume(*batch));
  ASSERT_OK_AND_ASSIGN(auto result, aggregation->Finish());
  ExpectMatchesReference(*bound, input, *result);
}

TEST(GroupedAggregationTest, MergeEqualsConsumingEverythingInOneState) {
  auto input = RandomInput(23, 10);
  for (const auto& keys : KeySets()) {
    SCOPED_TRACE(Name(keys));
    ASSERT_OK_AND_ASSIGN(auto bound, BoundAggregation::Bind(InputSchema(), keys, AllAggregates()));
    // Three states over consecutive thirds, merged in order into the first.
    std::vector<std::unique_ptr<GroupedAggregation>> parts;
    for (int p = 0; p < 3; ++p) {
      ASSERT_OK_AND_ASSIGN(auto part, GroupedAggregation::Make(bound));
      parts.push_back(std::move(part));
    }
    for (size_t i = 0; i < input.size(); ++i) {
      ASSERT_OK(parts[std::min<size_t>(2, i * 3 / input.size())]->Consume(*input[i]));
    }
    ASSERT_OK(parts[0]->Merge(std::move(*parts[1])));
    ASSERT_OK(parts[0]->Merge(std::move(*parts[2])));
    if (!keys.empty()) {
      EXPECT_EQ(parts[1]->num_groups(), 0);
      EXPECT_EQ(parts[2]->num_groups(), 0);
    }
    ASSERT_OK_AND_ASSIGN(auto result, parts[0]->Finish());
    ExpectMatchesReference(*bound, input, *result);

    // A merged-from state is empty and consumes again.
    ASSERT_OK(parts[1]->Consume(*input[0]));
    ASSERT_OK_AND_ASSIGN(auto again, parts[1]->Finish());
    ExpectMatchesReference(*bound, {input[0]}, *again);
  }
}

TEST(GroupedAggregationTest, ConsumeKnownTakesTheRowsOfKnownKeysAndReturnsTheOthers) {
  auto input = RandomInput(61, 8);
  const std::vector<std::string> keys = {"k_int", "k_str"};
  ASSERT_OK_AND_ASSIGN(auto bound, BoundAggregation::Bind(InputSchema(), keys, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound));
  ASSERT_OK(aggregation->Consume(*input[0]));
  const int64_t groups = aggregation->num_groups();
  // The rows of known keys, and the returned rest, split every later batch exactly.
  std::vector<std::shared_ptr<arrow::RecordBatch>> known = {input[0]};
  std::vector<std::shared_ptr<arrow::RecordBatch>> rest;
  int64_t rest_rows = 0;
  std::set<std::string> first_keys;
  const std::vector<int> key_columns = {0, 1};
  for (int64_t row = 0; row < input[0]->num_rows(); ++row) {
    first_keys.insert(testing::KeyOf(*input[0], key_columns, row));
  }
  for (size_t i = 1; i < input.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto unknown, aggregation->ConsumeKnown(input[i]));
    EXPECT_TRUE(unknown->schema()->Equals(*input[i]->schema()));
    for (int64_t row = 0; row < unknown->num_rows(); ++row) {
      EXPECT_EQ(first_keys.count(testing::KeyOf(*unknown, key_columns, row)), 0u);
    }
    // What was consumed: the rows whose key was known, in order.
    arrow::Int64Builder take;
    for (int64_t row = 0; row < input[i]->num_rows(); ++row) {
      if (first_keys.count(testing::KeyOf(*input[i], key_columns, row)) > 0) {
        ASSERT_OK(take.Append(row));
      }
    }
    ASSERT_OK_AND_ASSIGN(auto indices, take.Finish());
    EXPECT_EQ(indices->length() + unknown->num_rows(), input[i]->num_rows());
    ASSERT_OK_AND_ASSIGN(auto taken,
                         arrow::compute::Take(arrow::Datum(input[i]), arrow::Datum(indices)));
    known.push_back(taken.record_batch());
    rest.push_back(unknown);
    rest_rows += unknown->num_rows();
  }
  EXPECT_EQ(aggregation->num_groups(), groups) << "ConsumeKnown made a group";
  EXPECT_GT(rest_rows, 0);
  ASSERT_OK_AND_ASSIGN(auto result, aggregation->Finish());
  ExpectMatchesReference(*bound, known, *result);

  // A global aggregation knows every row.
  ASSERT_OK_AND_ASSIGN(auto global, BoundAggregation::Bind(InputSchema(), {}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto global_state, GroupedAggregation::Make(global));
  for (const auto& batch : input) {
    ASSERT_OK_AND_ASSIGN(auto unknown, global_state->ConsumeKnown(batch));
    EXPECT_EQ(unknown->num_rows(), 0);
  }
  ASSERT_OK_AND_ASSIGN(auto global_result, global_state->Finish());
  ExpectMatchesReference(*global, input, *global_result);
}

TEST(GroupedAggregationTest, MergingAnEmptyStateChangesNothing) {
  auto input = RandomInput(3, 3);
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BoundAggregation::Bind(InputSchema(), {"k_str"}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto target, GroupedAggregation::Make(bound));
  ASSERT_OK_AND_ASSIGN(auto empty, GroupedAggregation::Make(bound));
  for (const auto& batch : input) ASSERT_OK(target->Consume(*batch));
  ASSERT_OK(target->Merge(std::move(*empty)));
  ASSERT_OK_AND_ASSIGN(auto result, target->Finish());
  ExpectMatchesReference(*bound, input, *result);

  // And merging into an empty state gives the other's result.
  ASSERT_OK_AND_ASSIGN(auto source, GroupedAggregation::Make(bound));
  for (const auto& batch : input) ASSERT_OK(source->Consume(*batch));
  ASSERT_OK(empty->Merge(std::move(*source)));
  ASSERT_OK_AND_ASSIGN(auto merged, empty->Finish());
  ExpectMatchesReference(*bound, input, *merged);
}

TEST(GroupedAggregationTest, MergeRefusesAnotherAggregationsState) {
  ASSERT_OK_AND_ASSIGN(auto a, BoundAggregation::Bind(InputSchema(), {"k_int"}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto b, BoundAggregation::Bind(InputSchema(), {"k_int"}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto state_a, GroupedAggregation::Make(a));
  ASSERT_OK_AND_ASSIGN(auto state_b, GroupedAggregation::Make(b));
  ASSERT_RAISES_WITH(Invalid, "different aggregations", state_a->Merge(std::move(*state_b)));
}

TEST(GroupedAggregationTest, FinishResetsTheStateForReuse) {
  auto first = RandomInput(31, 4);
  auto second = RandomInput(32, 5);
  for (const auto& keys : KeySets()) {
    SCOPED_TRACE(Name(keys));
    ASSERT_OK_AND_ASSIGN(auto bound, BoundAggregation::Bind(InputSchema(), keys, AllAggregates()));
    ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound));
    for (const auto& batch : first) ASSERT_OK(aggregation->Consume(*batch));
    ASSERT_OK_AND_ASSIGN(auto result1, aggregation->Finish());
    ExpectMatchesReference(*bound, first, *result1);
    for (const auto& batch : second) ASSERT_OK(aggregation->Consume(*batch));
    ASSERT_OK_AND_ASSIGN(auto result2, aggregation->Finish());
    ExpectMatchesReference(*bound, second, *result2);
    // The first result is untouched by the reuse.
    ExpectMatchesReference(*bound, first, *result1);
  }
}

TEST(GroupedAggregationTest, NoInputGivesNoGroupsOrOneGlobalRow) {
  ASSERT_OK_AND_ASSIGN(auto keyed,
                       BoundAggregation::Bind(InputSchema(), {"k_int"}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto keyed_state, GroupedAggregation::Make(keyed));
  EXPECT_EQ(keyed_state->num_groups(), 0);
  ASSERT_OK_AND_ASSIGN(auto keyed_result, keyed_state->Finish());
  EXPECT_EQ(keyed_result->num_rows(), 0);
  EXPECT_TRUE(keyed_result->schema()->Equals(*keyed->output_schema()));

  ASSERT_OK_AND_ASSIGN(auto global, BoundAggregation::Bind(InputSchema(), {}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto global_state, GroupedAggregation::Make(global));
  EXPECT_EQ(global_state->num_groups(), 1);
  ASSERT_OK_AND_ASSIGN(auto global_result, global_state->Finish());
  ASSERT_EQ(global_result->num_rows(), 1);
  ExpectMatchesReference(*global, {}, *global_result);
  // count 0, sum null, count_distinct 0.
  EXPECT_EQ(ValueAt(*global_result->GetColumnByName("count"), 0), MaybeValue(int64_t{0}));
  EXPECT_FALSE(global_result->GetColumnByName("sum_v_int")->IsValid(0));
  EXPECT_EQ(ValueAt(*global_result->GetColumnByName("count_distinct_v_str"), 0),
            MaybeValue(int64_t{0}));
}

TEST(GroupedAggregationTest, AllNullValuesGiveNullAggregatesAndZeroCounts) {
  auto schema =
      arrow::schema({arrow::field("k", arrow::int32()), arrow::field("v", arrow::int64())});
  arrow::Int32Builder keys;
  arrow::Int64Builder values;
  ASSERT_OK(keys.AppendValues({1, 1, 2}));
  ASSERT_OK(values.AppendNulls(2));
  ASSERT_OK(values.Append(5));
  auto batch = arrow::RecordBatch::Make(schema, 3, {*keys.Finish(), *values.Finish()});
  ASSERT_OK_AND_ASSIGN(auto bound, BoundAggregation::Bind(schema, {"k"},
                                                          {{AggregateFunction::kCount, "v", ""},
                                                           {AggregateFunction::kSum, "v", ""},
                                                           {AggregateFunction::kMin, "v", ""},
                                                           {AggregateFunction::kMean, "v", ""},
                                                           {AggregateFunction::kCount, "", ""}}));
  ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound));
  ASSERT_OK(aggregation->Consume(*batch));
  ASSERT_OK_AND_ASSIGN(auto result, aggregation->Finish());
  ASSERT_EQ(result->num_rows(), 2);
  EXPECT_EQ(ValueAt(*result->column(1), 0), MaybeValue(int64_t{0}));
  EXPECT_FALSE(result->column(2)->IsValid(0));
  EXPECT_FALSE(result->column(3)->IsValid(0));
  EXPECT_FALSE(result->column(4)->IsValid(0));
  EXPECT_EQ(ValueAt(*result->column(5), 0), MaybeValue(int64_t{2}));
  EXPECT_EQ(ValueAt(*result->column(2), 1), MaybeValue(int64_t{5}));
}

// docs/hashing.md: -0.0 and 0.0 are one key, all NaNs are one key (the HASH partitioner agrees),
// for float32 and float64 keys, through Consume, ConsumeKnown and Merge; the key comes out as
// 0.0 and the canonical NaN.
template <typename Builder, typename CType>
void ExpectZerosAndNaNsAreOneKey(const std::shared_ptr<arrow::DataType>& type) {
  SCOPED_TRACE(type->ToString());
  auto schema = arrow::schema({arrow::field("k", type), arrow::field("v", arrow::int64())});
  // A NaN with a payload other than the canonical one, and the negative quiet NaN.
  const CType other_nan = std::nan("7");
  const CType negative_nan = -std::numeric_limits<CType>::quiet_NaN();
  auto make = [&](std::vector<CType> k, std::vector<bool> valid) {
    Builder keys;
    arrow::Int64Builder values;
    EXPECT_OK(keys.AppendValues(k, valid));
    for (size_t i = 0; i < k.size(); ++i) EXPECT_OK(values.Append(1));
    return arrow::RecordBatch::Make(schema, static_cast<int64_t>(k.size()),
                                    {*keys.Finish(), *values.Finish()});
  };
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BoundAggregation::Bind(schema, {"k"}, {{AggregateFunction::kSum, "v", ""}}));
  ASSERT_OK_AND_ASSIGN(auto a, GroupedAggregation::Make(bound));
  ASSERT_OK_AND_ASSIGN(auto b, GroupedAggregation::Make(bound));
  ASSERT_OK(a->Consume(*make({CType{0}, -CType{0}, other_nan, 1.5, 0}, {1, 1, 1, 1, 0})));
  ASSERT_OK(b->Consume(*make({-CType{0}, negative_nan}, {1, 1})));
  ASSERT_OK_AND_ASSIGN(auto unknown, a->ConsumeKnown(make(
      {-CType{0}, std::numeric_limits<CType>::quiet_NaN(), 2.5}, {1, 1, 1})));
  ASSERT_EQ(unknown->num_rows(), 1);  // only 2.5 is new
  ASSERT_OK(a->Merge(std::move(*b)));
  ASSERT_OK_AND_ASSIGN(auto result, a->Finish());
  std::map<std::string, int64_t> sums;
  for (int64_t i = 0; i < result->num_rows(); ++i) {
    std::string key = "null";
    if (result->column(0)->IsValid(i)) {
      const CType v = static_cast<const arrow::NumericArray<typename Builder::TypeClass>&>(
                          *result->column(0)).Value(i);
      key = std::isnan(v) ? "nan" : std::to_string(v);
      if (v == 0) {
        EXPECT_FALSE(std::signbit(v)) << "the zero key comes out as 0.0";
      }
    }
    ASSERT_EQ(sums.count(key), 0u) << key << " is two groups";
    sums[key] = static_cast<const arrow::Int64Array&>(*result->column(1)).Value(i);
  }
  EXPECT_EQ(sums, (std::map<std::string, int64_t>{
                      {std::to_string(CType{0}), 4}, {"nan", 3},
                      {std::to_string(CType{1.5}), 1}, {"null", 1}}));
}

TEST(GroupedAggregationTest, NegativeZeroAndZeroAreOneKeyAndSoAreAllNaNs) {
  ExpectZerosAndNaNsAreOneKey<arrow::DoubleBuilder, double>(arrow::float64());
  ExpectZerosAndNaNsAreOneKey<arrow::FloatBuilder, float>(arrow::float32());
}

TEST(GroupedAggregationTest, BindRefusesWhatCannotBeComputed) {
  auto schema = InputSchema();
  const std::vector<AggregateSpec> count = {{AggregateFunction::kCount, "", ""}};
  ASSERT_RAISES_WITH(KeyError, "'nope'", BoundAggregation::Bind(schema, {"nope"}, count));
  ASSERT_RAISES_WITH(KeyError, "'missing'",
                     BoundAggregation::Bind(schema, {"k_int"},
                                            {{AggregateFunction::kSum, "missing", ""}}));
  ASSERT_RAISES_WITH(TypeError, "sum(v_str)",
                     BoundAggregation::Bind(schema, {"k_int"},
                                            {{AggregateFunction::kSum, "v_str", ""}}));
  ASSERT_RAISES_WITH(TypeError, "approx_median(v_str)",
                     BoundAggregation::Bind(schema, {"k_int"},
                                            {{AggregateFunction::kApproxMedian, "v_str", ""}}));
  ASSERT_RAISES_WITH(TypeError, "mean(k_ts)",
                     BoundAggregation::Bind(schema, {}, {{AggregateFunction::kMean, "k_ts", ""}}));
  ASSERT_RAISES_WITH(Invalid, "no aggregate", BoundAggregation::Bind(schema, {"k_int"}, {}));
  ASSERT_RAISES_WITH(Invalid, "'sum_v_int'",
                     BoundAggregation::Bind(schema, {"k_int"},
                                            {{AggregateFunction::kSum, "v_int", ""},
                                             {AggregateFunction::kSum, "v_int", ""}}));
  ASSERT_RAISES_WITH(Invalid, "'k_str'",
                     BoundAggregation::Bind(schema, {"k_str"},
                                            {{AggregateFunction::kMax, "v_str", "k_str"}}));
  ASSERT_RAISES_WITH(Invalid, "listed twice",
                     BoundAggregation::Bind(schema, {"k_int", "k_int"}, count));
  ASSERT_RAISES_WITH(Invalid, "needs a column",
                     BoundAggregation::Bind(schema, {}, {{AggregateFunction::kSum, "", ""}}));
  auto ambiguous = arrow::schema({arrow::field("a", arrow::int32()),
                                  arrow::field("a", arrow::int32())});
  ASSERT_RAISES_WITH(Invalid, "names 2 columns", BoundAggregation::Bind(ambiguous, {"a"}, count));
  auto nested = arrow::schema({arrow::field("l", arrow::list(arrow::int32()))});
  ASSERT_RAISES_WITH(TypeError, "cannot group", BoundAggregation::Bind(nested, {"l"}, count));
}

TEST(GroupedAggregationTest, ConsumeRefusesABatchOfAnotherSchema) {
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BoundAggregation::Bind(InputSchema(), {"k_int"}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound));
  auto other = arrow::schema({arrow::field("k_int", arrow::int64())});
  arrow::Int64Builder builder;
  ASSERT_OK(builder.Append(1));
  auto batch = arrow::RecordBatch::Make(other, 1, {*builder.Finish()});
  ASSERT_RAISES_WITH(Invalid, "1 columns", aggregation->Consume(*batch));
}

TEST(GroupedAggregationTest, MemoryBytesFollowsTheStateAndComesFromThePool) {
  arrow::ProxyMemoryPool pool(arrow::default_memory_pool());
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BoundAggregation::Bind(InputSchema(), {"v_int", "v_str"}, AllAggregates()));
  ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound, &pool));
  const int64_t empty = aggregation->memory_bytes();
  auto input = RandomInput(41, 12);
  for (const auto& batch : input) ASSERT_OK(aggregation->Consume(*batch));
  EXPECT_GT(aggregation->num_groups(), 1000);
  const int64_t full = aggregation->memory_bytes();
  // At least a few bytes per group for every aggregate.
  EXPECT_GT(full, empty + aggregation->num_groups() * 8 * 10);
  EXPECT_GE(pool.bytes_allocated(), full);
  {
    ASSERT_OK_AND_ASSIGN(auto result, aggregation->Finish());
    EXPECT_GT(result->num_rows(), 1000);
  }
  // The result dropped, the state reset: back near empty.
  EXPECT_LT(aggregation->memory_bytes(), full / 4);
  aggregation.reset();
  EXPECT_EQ(pool.bytes_allocated(), 0);
}

TEST(GroupedAggregationTest, AResultMayOutliveItsState) {
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BoundAggregation::Bind(InputSchema(), {"k_str"}, AllAggregates()));
  auto input = RandomInput(43, 3);
  std::shared_ptr<arrow::RecordBatch> result;
  {
    ASSERT_OK_AND_ASSIGN(auto aggregation, GroupedAggregation::Make(bound));
    for (const auto& batch : input) ASSERT_OK(aggregation->Consume(*batch));
    ASSERT_OK_AND_ASSIGN(result, aggregation->Finish());
  }
  ASSERT_OK(result->ValidateFull());
  ExpectMatchesReference(*bound, input, *result);
}

}  // namespace
}  // namespace sabot
