#include "sabot/common/data_generator.h"

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/record_batch.h>

namespace sabot {
namespace {

TEST(DataGenerator, DeterministicAndIdentifiable) {
  DataGeneratorOptions options{.batch_rows = 100, .key_cardinality = 10, .string_key = true,
                               .payload_columns = 2};
  auto a = GenerateBatch(options, 3).ValueOrDie();
  auto b = GenerateBatch(options, 3).ValueOrDie();
  ASSERT_TRUE(a->Equals(*b));
  ASSERT_EQ(a->num_columns(), 4);
  auto keys = std::static_pointer_cast<arrow::Int64Array>(a->column(0));
  auto strings = std::static_pointer_cast<arrow::StringArray>(a->column(1));
  auto p1 = std::static_pointer_cast<arrow::Int64Array>(a->column(3));
  for (int64_t i = 0; i < a->num_rows(); ++i) {
    EXPECT_GE(keys->Value(i), 0);
    EXPECT_LT(keys->Value(i), 10);
    EXPECT_EQ(keys->Value(i), GeneratedKey(options, 300 + i));
    EXPECT_EQ(strings->GetString(i), std::to_string(keys->Value(i)));
    EXPECT_EQ(p1->Value(i), (300 + i) * 16 + 1);
  }
}

TEST(DataGenerator, SkewedPutsHotFractionOnKeyZero) {
  DataGeneratorOptions options{.batch_rows = 20000, .key_cardinality = 1000,
                               .distribution = KeyDistribution::kSkewed, .hot_key_fraction = 0.8};
  auto batch = GenerateBatch(options, 0).ValueOrDie();
  auto keys = std::static_pointer_cast<arrow::Int64Array>(batch->column(0));
  int64_t zeros = 0;
  for (int64_t i = 0; i < keys->length(); ++i) zeros += keys->Value(i) == 0;
  EXPECT_GT(zeros, 15000);
  EXPECT_LT(zeros, 17000);
}

TEST(DataGenerator, RejectsNonsense) {
  EXPECT_TRUE(GenerateBatch({.key_cardinality = 0}, 0).status().IsInvalid());
  EXPECT_TRUE(GenerateBatch({.batch_rows = -1}, 0).status().IsInvalid());
}

}  // namespace
}  // namespace sabot
