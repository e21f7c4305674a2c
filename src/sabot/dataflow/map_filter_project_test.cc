#include "sabot/dataflow/map_filter_project.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/compute/api.h>
#include <arrow/type.h>

#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/testing/assertions.h"

// The reference results are computed with Arrow compute calls written out here, independently of
// the expression library's binder.

namespace sabot {
namespace {

namespace cp = arrow::compute;

using Collector = testing::CollectingOutput;

std::shared_ptr<arrow::RecordBatch> Input(uint64_t seed, int64_t rows) {
  std::mt19937_64 rng(seed);
  arrow::Int64Builder users;
  arrow::DoubleBuilder amounts;
  arrow::StringBuilder names;
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_OK(users.Append(static_cast<int64_t>(rng() % 20)));
    if (rng() % 7 == 0) {
      EXPECT_OK(amounts.AppendNull());
    } else {
      EXPECT_OK(amounts.Append(static_cast<double>(rng() % 10000) / 100.0));
    }
    EXPECT_OK(names.Append("u" + std::to_string(rng() % 5)));
  }
  auto schema = arrow::schema({arrow::field("user_id", arrow::int64(), false),
                               arrow::field("amount", arrow::float64()),
                               arrow::field("name", arrow::utf8())});
  return arrow::RecordBatch::Make(schema, rows,
                                  {users.Finish().ValueOrDie(), amounts.Finish().ValueOrDie(),
                                   names.Finish().ValueOrDie()});
}

OperatorSpec Spec(std::string name, OperatorParams params) {
  OperatorSpec spec;
  spec.name = std::move(name);
  spec.params = std::move(params);
  return spec;
}

std::shared_ptr<arrow::Array> Call(const std::string& function, std::vector<arrow::Datum> args) {
  return cp::CallFunction(function, args).ValueOrDie().make_array();
}

arrow::Result<Collector> RunOperator(const BoundOperator& bound,
                             const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  ARROW_ASSIGN_OR_RAISE(auto op, bound.make_operator(TaskContext{}));
  Collector out;
  for (const auto& batch : batches) ARROW_RETURN_NOT_OK(op->Process(0, batch, &out));
  ARROW_RETURN_NOT_OK(op->OnWatermark(42, &out));
  ARROW_RETURN_NOT_OK(op->Finish(&out));
  int64_t rows_in = 0;
  int64_t rows_out = 0;
  for (const auto& b : batches) rows_in += b->num_rows();
  for (const auto& b : out.batches) rows_out += b->num_rows();
  if (op->rows_in() != rows_in || op->rows_out() != rows_out) {
    return arrow::Status::Invalid("row counters disagree");
  }
  return out;
}

TEST(MapOperatorTest, ReplacesInPlaceAndAppends) {
  auto input = Input(1, 500);
  MapParams params{{{"doubled", "amount * 2"}, {"user_id", "user_id + 100"},
                    {"flag", "amount > 50"}}};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("m", params), {input->schema()}, {}));
  ASSERT_EQ(bound.output_schema->ToString(),
            "user_id: int64\namount: double\nname: string\ndoubled: double\nflag: bool");
  ASSERT_OK_AND_ASSIGN(auto out, RunOperator(bound, {input, input->Slice(100, 50)}));
  ASSERT_EQ(out.batches.size(), 2u);
  EXPECT_EQ(out.watermarks, std::vector<WatermarkMs>{42});
  for (size_t i = 0; i < 2; ++i) {
    auto in = i == 0 ? input : input->Slice(100, 50);
    auto expected = arrow::RecordBatch::Make(
        bound.output_schema, in->num_rows(),
        {Call("add_checked", {in->column(0), arrow::MakeScalar(int64_t{100})}), in->column(1),
         in->column(2), Call("multiply_checked", {in->column(1), arrow::MakeScalar(2.0)}),
         Call("greater", {in->column(1), arrow::MakeScalar(50.0)})});
    ASSERT_BATCHES_EQUAL(*expected, *out.batches[i]);
  }
}

TEST(FilterOperatorTest, KeepsTrueRowsOnly) {
  auto input = Input(2, 700);
  FilterParams params{"amount > 40 and user_id < 10"};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("f", params), {input->schema()}, {}));
  ASSERT_TRUE(bound.output_schema->Equals(*input->schema()));
  // A batch where nothing passes is not emitted.
  ASSERT_OK_AND_ASSIGN(auto empty, BindOperator(Spec("f", FilterParams{"amount < 0"}),
                                                {input->schema()}, {}));
  ASSERT_OK_AND_ASSIGN(auto none, RunOperator(empty, {input}));
  EXPECT_TRUE(none.batches.empty());

  ASSERT_OK_AND_ASSIGN(auto out, RunOperator(bound, {input}));
  ASSERT_EQ(out.batches.size(), 1u);
  auto greater = Call("greater", {input->column(1), arrow::MakeScalar(40.0)});
  auto less = Call("less", {input->column(0), arrow::MakeScalar(int64_t{10})});
  auto mask = Call("and_kleene", {greater, less});
  ASSERT_OK_AND_ASSIGN(auto filtered, cp::Filter(input, mask));
  auto expected = filtered.record_batch();
  ASSERT_GT(expected->num_rows(), 0);
  ASSERT_LT(expected->num_rows(), input->num_rows());
  ASSERT_BATCHES_EQUAL(*expected, *out.batches[0]);
}

TEST(ProjectOperatorTest, OutputsExactlyTheColumns) {
  auto input = Input(3, 300);
  ProjectParams params{{{"name", "name"}, {"cents", "amount * 100"}, {"", "user_id"}}};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(Spec("p", params), {input->schema()}, {}));
  ASSERT_EQ(bound.output_schema->ToString(),
            "name: string\ncents: double\nuser_id: int64 not null");
  ASSERT_OK_AND_ASSIGN(auto out, RunOperator(bound, {input}));
  auto expected = arrow::RecordBatch::Make(
      bound.output_schema, input->num_rows(),
      {input->column(2), Call("multiply_checked", {input->column(1), arrow::MakeScalar(100.0)}),
       input->column(0)});
  ASSERT_BATCHES_EQUAL(*expected, *out.batches[0]);
}

TEST(MapFilterProjectTest, BindErrorsNameTheOperatorAndPosition) {
  auto schema = Input(4, 1)->schema();
  ASSERT_RAISES_WITH(KeyError, "operator 'm' (map): column 'x': unknown column 'amout' at 1:5",
                     BindOperator(Spec("m", MapParams{{{"x", "1 + amout"}}}), {schema}, {}));
  ASSERT_RAISES_WITH(TypeError, "operator 'm' (map): column 'x': ",
                     BindOperator(Spec("m", MapParams{{{"x", "amount + name"}}}), {schema}, {}));
  ASSERT_RAISES_WITH(TypeError, "operator 'keep' (filter): predicate: filter ",
                     BindOperator(Spec("keep", FilterParams{"amount * 2"}), {schema}, {}));
  ASSERT_RAISES_WITH(Invalid, "operator 'keep' (filter): predicate: expression error at 1:9",
                     BindOperator(Spec("keep", FilterParams{"amount >"}), {schema}, {}));
  ASSERT_RAISES_WITH(KeyError, "operator 'p' (project): unknown column 'nope'",
                     BindOperator(Spec("p", ProjectParams{{{"a", "nope"}}}), {schema}, {}));
  ASSERT_RAISES_WITH(Invalid, "operator 'm' (map): map column 'x' is given more than once",
                     BindOperator(Spec("m", MapParams{{{"x", "1"}, {"x", "2"}}}), {schema}, {}));
}

}  // namespace
}  // namespace sabot
