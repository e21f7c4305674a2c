#pragma once

// Test support for aggregations: an independent reference (each group's rows kept in a std::map
// keyed by the key values, every aggregate computed with plain C++ loops, no Arrow compute) and
// the checks of a result against it. Used by grouped_aggregation_test and
// aggregate_operator_test.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/testing/assertions.h"

namespace sabot::testing {

using Value = std::variant<int64_t, double, std::string>;
using MaybeValue = std::optional<Value>;

// Row `row` of `array` as a plain value (dictionaries decoded, timestamps as their integer).
inline MaybeValue ValueAt(const arrow::Array& array, int64_t row) {
  if (array.IsNull(row)) return std::nullopt;
  switch (array.type_id()) {
    case arrow::Type::INT32:
      return Value(int64_t{static_cast<const arrow::Int32Array&>(array).Value(row)});
    case arrow::Type::INT64:
      return Value(static_cast<const arrow::Int64Array&>(array).Value(row));
    case arrow::Type::UINT64:
      return Value(static_cast<int64_t>(static_cast<const arrow::UInt64Array&>(array).Value(row)));
    case arrow::Type::TIMESTAMP:
      return Value(static_cast<const arrow::TimestampArray&>(array).Value(row));
    case arrow::Type::DOUBLE:
      return Value(static_cast<const arrow::DoubleArray&>(array).Value(row));
    case arrow::Type::STRING:
      return Value(std::string(static_cast<const arrow::StringArray&>(array).GetView(row)));
    case arrow::Type::DICTIONARY: {
      const auto& dictionary = static_cast<const arrow::DictionaryArray&>(array);
      return ValueAt(*dictionary.dictionary(), dictionary.GetValueIndex(row));
    }
    default:
      ADD_FAILURE() << "unexpected type " << array.type()->ToString();
      return std::nullopt;
  }
}

inline std::string Show(const MaybeValue& value) {
  if (!value) return "null";
  if (auto* i = std::get_if<int64_t>(&*value)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&*value)) return std::to_string(*d);
  return "'" + std::get<std::string>(*value) + "'";
}

// The key of a row: its key values, nulls included, as one comparable string.
inline std::string KeyOf(const arrow::RecordBatch& batch, const std::vector<int>& columns,
                  int64_t row) {
  std::string key;
  for (int column : columns) {
    MaybeValue value = ValueAt(*batch.column(column), row);
    key += value ? Show(value) : std::string("\x01null");
    key += '\x02';
  }
  return key;
}

inline double AsDouble(const Value& value) {
  if (auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  return std::get<double>(value);
}

// The reference result of `spec` over the values of one group (in arrival order, nulls kept).
inline MaybeValue Reference(const AggregateSpec& spec, const std::vector<MaybeValue>& values) {
  std::vector<Value> valid;
  for (const auto& value : values) {
    if (value) valid.push_back(*value);
  }
  switch (spec.function) {
    case AggregateFunction::kCount:
      return Value(static_cast<int64_t>(spec.column.empty() ? values.size() : valid.size()));
    case AggregateFunction::kCountDistinct:
      return Value(static_cast<int64_t>(std::set<Value>(valid.begin(), valid.end()).size()));
    case AggregateFunction::kSum: {
      if (valid.empty()) return std::nullopt;
      if (std::holds_alternative<double>(valid[0])) {
        double sum = 0;
        for (const auto& v : valid) sum += std::get<double>(v);
        return Value(sum);
      }
      int64_t sum = 0;
      for (const auto& v : valid) sum += std::get<int64_t>(v);
      return Value(sum);
    }
    case AggregateFunction::kMean: {
      if (valid.empty()) return std::nullopt;
      double sum = 0;
      for (const auto& v : valid) sum += AsDouble(v);
      return Value(sum / static_cast<double>(valid.size()));
    }
    case AggregateFunction::kMin:
      if (valid.empty()) return std::nullopt;
      return *std::min_element(valid.begin(), valid.end());
    case AggregateFunction::kMax:
      if (valid.empty()) return std::nullopt;
      return *std::max_element(valid.begin(), valid.end());
    case AggregateFunction::kFirst:
      if (valid.empty()) return std::nullopt;
      return valid.front();
    case AggregateFunction::kLast:
      if (valid.empty()) return std::nullopt;
      return valid.back();
    case AggregateFunction::kApproxMedian:
      break;  // an estimate: checked by ExpectMedianEstimate
  }
  return std::nullopt;
}

// An approximate median (t-digest) is right when at most half the values, plus a small rank
// error, lie on either side of it.
inline void ExpectMedianEstimate(const std::vector<MaybeValue>& values, const MaybeValue& actual,
                          const std::string& what) {
  std::vector<double> valid;
  for (const auto& value : values) {
    if (value) valid.push_back(AsDouble(*value));
  }
  if (valid.empty()) {
    EXPECT_FALSE(actual.has_value()) << what << ": expected null, got " << Show(actual);
    return;
  }
  ASSERT_TRUE(actual.has_value()) << what << ": null for " << valid.size() << " values";
  const double estimate = AsDouble(*actual);
  const double n = static_cast<double>(valid.size());
  const double below = static_cast<double>(
      std::count_if(valid.begin(), valid.end(), [&](double v) { return v < estimate; }));
  const double above = static_cast<double>(
      std::count_if(valid.begin(), valid.end(), [&](double v) { return v > estimate; }));
  const double allowed = n / 2 + std::max(1.0, 0.05 * n);
  EXPECT_LE(below, allowed) << what << ": " << estimate << " is above too many of " << n;
  EXPECT_LE(above, allowed) << what << ": " << estimate << " is below too many of " << n;
}

inline bool SameValue(const MaybeValue& expected, const MaybeValue& actual) {
  if (!expected || !actual) return !expected && !actual;
  if (std::holds_alternative<double>(*expected) || std::holds_alternative<double>(*actual)) {
    double e = AsDouble(*expected);
    double a = AsDouble(*actual);
    return std::fabs(e - a) <= 1e-9 * std::max(1.0, std::fabs(e));
  }
  return *expected == *actual;
}

// The test input: keys of four types (int32, string, timestamp, dictionary with a different
// dictionary in every batch), values of four, nulls everywhere.
inline std::shared_ptr<arrow::Schema> InputSchema() {
  return arrow::schema({arrow::field("k_int", arrow::int32()),
                        arrow::field("k_str", arrow::utf8()),
                        arrow::field("k_ts", arrow::timestamp(arrow::TimeUnit::MILLI)),
                        arrow::field("k_dict", arrow::dictionary(arrow::int32(), arrow::utf8())),
                        arrow::field("v_int", arrow::int64()),
                        arrow::field("v_i32", arrow::int32()),
                        arrow::field("v_dbl", arrow::float64()),
                        arrow::field("v_str", arrow::utf8())});
}

inline std::shared_ptr<arrow::RecordBatch> RandomBatch(std::mt19937_64& rng, int64_t rows) {
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  arrow::Int32Builder k_int;
  arrow::StringBuilder k_str;
  arrow::TimestampBuilder k_ts(arrow::timestamp(arrow::TimeUnit::MILLI),
                               arrow::default_memory_pool());
  arrow::Int32Builder k_dict_indices;
  arrow::Int64Builder v_int;
  arrow::Int32Builder v_i32;
  arrow::DoubleBuilder v_dbl;
  arrow::StringBuilder v_str;
  std::vector<std::string> colors = {"red", "green", "blue", "cyan"};
  std::shuffle(colors.begin(), colors.end(), rng);
  const std::vector<std::string> names = {"ann", "bob", "", "dora", "eve"};
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_OK(chance(10) ? k_int.AppendNull() : k_int.Append(static_cast<int32_t>(rng() % 6)));
    EXPECT_OK(chance(10) ? k_str.AppendNull() : k_str.Append(names[rng() % names.size()]));
    EXPECT_OK(chance(10) ? k_ts.AppendNull()
                         : k_ts.Append(1700000000000 + 60000 * static_cast<int64_t>(rng() % 3)));
    EXPECT_OK(chance(10) ? k_dict_indices.AppendNull()
                         : k_dict_indices.Append(static_cast<int32_t>(rng() % colors.size())));
    EXPECT_OK(chance(20) ? v_int.AppendNull()
                         : v_int.Append(static_cast<int64_t>(rng() % 2001) - 1000));
    EXPECT_OK(chance(20) ? v_i32.AppendNull() : v_i32.Append(static_cast<int32_t>(rng() % 50)));
    EXPECT_OK(chance(20) ? v_dbl.AppendNull()
                         : v_dbl.Append(static_cast<double>(rng() % 100000) / 64.0 - 700));
    EXPECT_OK(chance(20) ? v_str.AppendNull()
                         : v_str.Append("s" + std::to_string(rng() % 40)));
  }
  arrow::StringBuilder dictionary_builder;
  EXPECT_OK(dictionary_builder.AppendValues(colors));
  std::shared_ptr<arrow::Array> dictionary = *dictionary_builder.Finish();
  std::shared_ptr<arrow::Array> indices = *k_dict_indices.Finish();
  auto k_dict = *arrow::DictionaryArray::FromArrays(
      arrow::dictionary(arrow::int32(), arrow::utf8()), indices, dictionary);
  return arrow::RecordBatch::Make(InputSchema(), rows,
                                  {*k_int.Finish(), *k_str.Finish(), *k_ts.Finish(), k_dict,
                                   *v_int.Finish(), *v_i32.Finish(), *v_dbl.Finish(),
                                   *v_str.Finish()});
}

// Batches of varied sizes, one empty, one a slice with an offset.
inline std::vector<std::shared_ptr<arrow::RecordBatch>> RandomInput(uint64_t seed, int batches) {
  std::mt19937_64 rng(seed);
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  for (int i = 0; i < batches; ++i) {
    int64_t rows = i == 1 ? 0 : static_cast<int64_t>(1 + rng() % 700);
    auto batch = RandomBatch(rng, rows + 13);
    out.push_back(i == 2 ? batch->Slice(7, rows) : batch->Slice(0, rows));
  }
  return out;
}

// Per group key (KeyOf), per aggregate, the group's argument values in arrival order (a row
// count's argument is 1 for every row). Without keys: one group "" even without input.
using ReferenceGroups = std::map<std::string, std::vector<std::vector<MaybeValue>>>;

inline ReferenceGroups GroupRows(const arrow::Schema& schema,
                                 const std::vector<std::string>& keys,
                                 const std::vector<AggregateSpec>& specs,
                                 const std::vector<std::shared_ptr<arrow::RecordBatch>>& input) {
  std::vector<int> key_columns;
  for (const auto& key : keys) key_columns.push_back(schema.GetFieldIndex(key));
  ReferenceGroups groups;
  if (key_columns.empty()) groups[""].resize(specs.size());
  for (const auto& batch : input) {
    for (int64_t row = 0; row < batch->num_rows(); ++row) {
      std::string key = KeyOf(*batch, key_columns, row);
      auto [it, inserted] = groups.try_emplace(key);
      if (inserted) it->second.resize(specs.size());
      for (size_t a = 0; a < specs.size(); ++a) {
        it->second[a].push_back(
            specs[a].column.empty()
                ? MaybeValue(Value(int64_t{1}))
                : ValueAt(*batch->column(schema.GetFieldIndex(specs[a].column)), row));
      }
    }
  }
  return groups;
}

// A result: per group key, the aggregates' values.
using ResultRows = std::map<std::string, std::vector<MaybeValue>>;

// The rows of a result batch whose first `num_keys` columns are the keys and the next
// `num_aggregates` the aggregates; fails on a key seen twice.
inline ResultRows RowsOf(const arrow::RecordBatch& result, size_t num_keys,
                         size_t num_aggregates) {
  std::vector<int> key_columns;
  for (size_t k = 0; k < num_keys; ++k) key_columns.push_back(static_cast<int>(k));
  ResultRows rows;
  for (int64_t row = 0; row < result.num_rows(); ++row) {
    std::vector<MaybeValue> values;
    for (size_t a = 0; a < num_aggregates; ++a) {
      values.push_back(ValueAt(*result.column(static_cast<int>(num_keys + a)), row));
    }
    const std::string key = KeyOf(result, key_columns, row);
    EXPECT_TRUE(rows.emplace(key, std::move(values)).second)
        << "group " << Show(MaybeValue(key)) << " appears twice";
  }
  return rows;
}

// Whether the rows of one group arrived in a known order (one upstream task) or interleaved
// from several tasks, which makes first and last any of the group's non-null values.
enum class ArrivalOrder { kKnown, kInterleaved };

// Checks `actual` against the reference: the same groups, every aggregate equal (an approximate
// median within its rank error).
inline void ExpectRowsMatch(const ReferenceGroups& groups,
                            const std::vector<AggregateSpec>& specs, const ResultRows& actual,
                            ArrivalOrder order = ArrivalOrder::kKnown) {
  ASSERT_EQ(actual.size(), groups.size());
  for (const auto& [key, aggregates] : actual) {
    auto it = groups.find(key);
    ASSERT_NE(it, groups.end()) << "group " << Show(MaybeValue(key)) << " is not in the input";
    const auto& values = it->second;
    for (size_t a = 0; a < specs.size(); ++a) {
      const std::string what =
          AggregateOutputName(specs[a]) + " of group " + Show(MaybeValue(key));
      const MaybeValue& value = aggregates[a];
      if (specs[a].function == AggregateFunction::kApproxMedian) {
        ExpectMedianEstimate(values[a], value, what);
        continue;
      }
      const bool first_or_last = specs[a].function == AggregateFunction::kFirst ||
                                 specs[a].function == AggregateFunction::kLast;
      if (first_or_last && order == ArrivalOrder::kInterleaved) {
        if (!value) {
          EXPECT_TRUE(std::none_of(values[a].begin(), values[a].end(),
                                   [](const MaybeValue& v) { return v.has_value(); }))
              << what << ": null though the group has values";
        } else {
          EXPECT_NE(std::find(values[a].begin(), values[a].end(), value), values[a].end())
              << what << ": " << Show(value) << " is not a value of the group";
        }
        continue;
      }
      MaybeValue expected = Reference(specs[a], values[a]);
      EXPECT_TRUE(SameValue(expected, value))
          << what << ": expected " << Show(expected) << ", got " << Show(value);
    }
  }
}

// Checks a result batch (keys, then one column per aggregate) against the reference over
// `input`.
inline void ExpectAggregation(const arrow::Schema& input_schema,
                              const std::vector<std::string>& keys,
                              const std::vector<AggregateSpec>& specs,
                              const std::vector<std::shared_ptr<arrow::RecordBatch>>& input,
                              const arrow::RecordBatch& result,
                              ArrivalOrder order = ArrivalOrder::kKnown) {
  ExpectRowsMatch(GroupRows(input_schema, keys, specs, input), specs,
                  RowsOf(result, keys.size(), specs.size()), order);
}

}  // namespace sabot::testing
