#include "sabot/dataflow/operator_binding.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/type.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// Sinks emit nothing; this output fails the test if they do.
class NoOutput : public OperatorOutput {
 public:
  arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>&) override {
    return arrow::Status::Invalid("a sink emitted a batch");
  }
  arrow::Status EmitWatermark(WatermarkMs) override {
    return arrow::Status::Invalid("a sink emitted a watermark");
  }
};

std::shared_ptr<arrow::RecordBatch> Ids(int64_t first, int64_t n) {
  arrow::Int64Builder ids;
  for (int64_t i = 0; i < n; ++i) EXPECT_OK(ids.Append(first + i));
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("id", arrow::int64())}), n,
                                  {ids.Finish().ValueOrDie()});
}

OperatorSpec Spec(std::string name, OperatorParams params) {
  OperatorSpec spec;
  spec.name = std::move(name);
  spec.params = std::move(params);
  return spec;
}

TEST(CollectedOutputTest, OrdersBySubtaskAndDeclaresEmptySinks) {
  CollectedOutput collected;
  collected.Add("out", 1, Ids(10, 2));
  collected.Add("out", 0, Ids(0, 3));
  collected.Add("out", 1, Ids(20, 1));
  ASSERT_OK_AND_ASSIGN(auto table, collected.Table("out"));
  ASSERT_OK_AND_ASSIGN(auto combined, table->CombineChunksToBatch());
  ASSERT_EQ(combined->column(0)->ToString(), "[\n  0,\n  1,\n  2,\n  10,\n  11,\n  20\n]");
  ASSERT_RAISES_WITH(KeyError, "'other'", collected.Table("other"));
  collected.Declare("other", Ids(0, 0)->schema());
  ASSERT_OK_AND_ASSIGN(auto empty, collected.Table("other"));
  EXPECT_EQ(empty->num_rows(), 0);
  EXPECT_TRUE(empty->schema()->Equals(*Ids(0, 0)->schema()));
  EXPECT_EQ(collected.sinks(), (std::vector<std::string>{"other", "out"}));
}

TEST(OperatorBindingTest, CollectSinkCollectsByTask) {
  BindOptions options;
  options.collected = std::make_shared<CollectedOutput>();
  auto batch = Ids(0, 4);
  ASSERT_OK_AND_ASSIGN(auto bound,
                       BindOperator(Spec("got", CollectSinkParams{}), {batch->schema()}, options));
  EXPECT_EQ(bound.output_schema, nullptr);
  EXPECT_FALSE(bound.make_source);
  ASSERT_OK_AND_ASSIGN(auto table, options.collected->Table("got"));
  EXPECT_EQ(table->num_rows(), 0);  // declared at bind time
  for (int32_t k : {1, 0}) {
    TaskContext ctx;
    ctx.subtask = k;
    ctx.parallelism = 2;
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(ctx));
    NoOutput none;
    ASSERT_OK(op->Process(0, Ids(k * 100, 3), &none));
    ASSERT_OK(op->OnWatermark(7, &none));
    ASSERT_OK(op->Finish(&none));
    EXPECT_EQ(op->rows_in(), 3);
    ASSERT_OK(op->Commit());  // rows are published when the job commits
  }
  ASSERT_OK_AND_ASSIGN(table, options.collected->Table("got"));
  ASSERT_OK_AND_ASSIGN(auto combined, table->CombineChunksToBatch());
  auto ids = std::static_pointer_cast<arrow::Int64Array>(combined->column(0));
  ASSERT_EQ(ids->length(), 6);
  EXPECT_EQ(ids->Value(0), 0);
  EXPECT_EQ(ids->Value(3), 100);

  ASSERT_RAISES_WITH(Invalid, "operator 'got' (collect_sink): collect sinks need",
                     BindOperator(Spec("got", CollectSinkParams{}), {batch->schema()}, {}));
}

TEST(OperatorBindingTest, StatefulKindsAndKeyByAreRefused) {
  auto schema = Ids(0, 0)->schema();
  ASSERT_RAISES_WITH(NotImplemented,
                     "operator 'w' (window): window does not run yet: it runs from the "
                     "stateful-operators issue",
                     BindOperator(Spec("w", WindowParams{}), {schema}, {}));
  ASSERT_RAISES_WITH(NotImplemented, "operator 'agg' (aggregate): ",
                     BindOperator(Spec("agg", AggregateParams{}), {schema}, {}));
  ASSERT_RAISES_WITH(NotImplemented, "operator 'j' (join): ",
                     BindOperator(Spec("j", JoinParams{}), {schema, schema}, {}));
  ASSERT_RAISES_WITH(Invalid, "operator 'k' (key_by): key_by is folded",
                     BindOperator(Spec("k", KeyByParams{{"id"}}), {schema}, {}));
}

TEST(OperatorBindingTest, WrongNumberOfInputsIsRefused) {
  auto schema = Ids(0, 0)->schema();
  ASSERT_RAISES_WITH(Invalid, "operator 'f' (filter): expected 1 input schema(s), got 0",
                     BindOperator(Spec("f", FilterParams{"id > 1"}), {}, {}));
  ASSERT_RAISES_WITH(Invalid, "operator 'g' (generator_source): expected 0 input schema(s)",
                     BindOperator(Spec("g", GeneratorSourceParams{}), {schema}, {}));
}

}  // namespace
}  // namespace sabot
