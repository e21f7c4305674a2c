#include "sabot/dataflow/watermark_generator.h"

#include <chrono>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/type.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::RecordBatch> TimeBatch(const std::shared_ptr<arrow::DataType>& type,
                                              const std::vector<std::optional<int64_t>>& values) {
  std::unique_ptr<arrow::ArrayBuilder> builder;
  EXPECT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &builder));
  for (const auto& v : values) {
    if (!v.has_value()) {
      EXPECT_OK(builder->AppendNull());
    } else if (type->id() == arrow::Type::TIMESTAMP) {
      EXPECT_OK(static_cast<arrow::TimestampBuilder&>(*builder).Append(*v));
    } else if (type->id() == arrow::Type::INT32) {
      EXPECT_OK(static_cast<arrow::Int32Builder&>(*builder).Append(static_cast<int32_t>(*v)));
    } else {
      EXPECT_OK(static_cast<arrow::Int64Builder&>(*builder).Append(*v));
    }
  }
  std::shared_ptr<arrow::Array> array;
  EXPECT_OK(builder->Finish(&array));
  auto schema = arrow::schema({arrow::field("x", arrow::utf8()), arrow::field("t", type)});
  auto strings = arrow::MakeArrayOfNull(arrow::utf8(), array->length()).ValueOrDie();
  return arrow::RecordBatch::Make(schema, array->length(), {strings, array});
}

TEST(WatermarkGeneratorTest, EmitsMaxMinusLatenessWhenItAdvances) {
  auto type = arrow::timestamp(arrow::TimeUnit::MILLI);
  auto first = TimeBatch(type, {1000, 5000, std::nullopt, 3000});
  ASSERT_OK_AND_ASSIGN(auto generator,
                       WatermarkGenerator::Make(*first->schema(),
                                                EventTimeSpec{"t", std::chrono::seconds(1)}));
  ASSERT_OK_AND_ASSIGN(auto w, generator.Observe(*first));
  ASSERT_EQ(w, std::optional<WatermarkMs>(4000));
  ASSERT_OK_AND_ASSIGN(w, generator.Observe(*TimeBatch(type, {4500, 4900})));
  ASSERT_EQ(w, std::nullopt);  // max did not advance
  ASSERT_OK_AND_ASSIGN(w, generator.Observe(*TimeBatch(type, {std::nullopt})));
  ASSERT_EQ(w, std::nullopt);  // only nulls
  ASSERT_OK_AND_ASSIGN(w, generator.Observe(*TimeBatch(type, {7000, 100})));
  ASSERT_EQ(w, std::optional<WatermarkMs>(6000));
  EXPECT_EQ(generator.max_event_time(), 7000);
  EXPECT_EQ(generator.watermark(), 6000);
}

TEST(WatermarkGeneratorTest, ConvertsUnitsToMilliseconds) {
  struct Case {
    std::shared_ptr<arrow::DataType> type;
    int64_t value;
    WatermarkMs expected;
  };
  for (const Case& c : std::vector<Case>{
           {arrow::timestamp(arrow::TimeUnit::SECOND), 7, 7000},
           {arrow::timestamp(arrow::TimeUnit::MICRO), 7999, 7},
           {arrow::timestamp(arrow::TimeUnit::NANO), -1, -1},  // rounds down
           {arrow::int32(), 123, 123},
           {arrow::int64(), 456, 456}}) {
    auto batch = TimeBatch(c.type, {c.value});
    const EventTimeSpec spec{"t", std::chrono::milliseconds(0)};
    ASSERT_OK_AND_ASSIGN(auto generator, WatermarkGenerator::Make(*batch->schema(), spec));
    ASSERT_OK_AND_ASSIGN(auto w, generator.Observe(*batch));
    ASSERT_EQ(w, std::optional<WatermarkMs>(c.expected)) << c.type->ToString();
  }
}

TEST(WatermarkGeneratorTest, RejectsMissingAndNonTimeColumns) {
  auto batch = TimeBatch(arrow::int64(), {1});
  ASSERT_RAISES_WITH(KeyError, "event-time column 'nope' is not a column of the source; its "
                               "columns are: x, t",
                     WatermarkGenerator::Make(*batch->schema(), EventTimeSpec{"nope", {}}));
  ASSERT_RAISES_WITH(TypeError, "event-time column 'x' has type string",
                     WatermarkGenerator::Make(*batch->schema(), EventTimeSpec{"x", {}}));
}

}  // namespace
}  // namespace sabot
