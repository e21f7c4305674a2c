#include "sabot/dataflow/operator_binding.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/compute/api.h>
#include <arrow/type.h>

#include "sabot/dataflow/generator_source.h"

#include "sabot/dataflow/operator_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using testing::NoOutput;

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

TEST(OperatorBindingTest, BadStatefulOperatorsAndKeyByAreRefused) {
  auto schema = Ids(0, 0)->schema();
  // A window binds (windowed_aggregate_test.cc); without an event-time column it is refused.
  ASSERT_RAISES_WITH(Invalid,
                     "operator 'w' (window): no source upstream declares an event-time column: declare",
                     BindOperator(Spec("w", WindowParams{}), {schema}, {}));
  // An aggregate after a window is the windowed aggregate (windowed_aggregate_test.cc), bound
  // with the window's parameters: the same refusal, named after the aggregate.
  OperatorSpec window = Spec("w", WindowParams{});
  OperatorPlanContext after_window;
  after_window.input_window = &window;
  ASSERT_RAISES_WITH(Invalid,
                     "operator 'agg' (aggregate): window 'w': no source upstream declares an "
                     "event-time column",
                     BindOperator(Spec("agg", AggregateParams{{AggregateSpec{}}}), {schema}, {},
                                  after_window));
  // A join binds (join_operator_test.cc); without keys it is refused like any bad join.
  ASSERT_RAISES_WITH(Invalid, "operator 'j' (join): a join needs",
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

// Passes what it gets to the next operator of a chain, as an executor's chained task does.
class ChainOutput : public OperatorOutput {
 public:
  ChainOutput(Operator* next, OperatorOutput* after) : next_(next), after_(after) {}
  arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>& batch) override {
    return next_->Process(0, batch, after_);
  }
  arrow::Status EmitWatermark(WatermarkMs watermark) override {
    return next_->OnWatermark(watermark, after_);
  }

 private:
  Operator* next_;
  OperatorOutput* after_;
};

TEST(OperatorBindingTest, ABoundChainComputesWhatArrowComputes) {
  // generator (transactions) -> map -> filter -> project -> collect, bound schema to schema, run
  // over 3 source tasks; the reference is the whole table put through Arrow compute calls.
  GeneratorSourceParams source;
  source.table = GeneratorTable::kTransactions;
  source.rows = 10000;
  source.batch_rows = 999;
  source.key_cardinality = 100;
  const std::vector<OperatorSpec> specs = {
      Spec("source", source),
      Spec("map", MapParams{{{"amount_usd", "amount * 1.1"}}}),
      Spec("filter", FilterParams{"amount_usd > 5000 and user_id < 50"}),
      Spec("project", ProjectParams{{{"user_id", "user_id"}, {"usd", "amount_usd"}}}),
      Spec("out", CollectSinkParams{})};
  BindOptions options;
  options.collected = std::make_shared<CollectedOutput>();
  std::vector<BoundOperator> bound;
  std::shared_ptr<arrow::Schema> schema;
  for (const auto& spec : specs) {
    std::vector<std::shared_ptr<arrow::Schema>> inputs;
    if (schema != nullptr) inputs.push_back(schema);
    ASSERT_OK_AND_ASSIGN(auto b, BindOperator(spec, inputs, options));
    schema = b.output_schema;
    bound.push_back(std::move(b));
  }
  ASSERT_EQ(bound[3].output_schema->ToString(), "user_id: int64 not null\nusd: double");
  constexpr int32_t kTasks = 3;
  for (int32_t k = 0; k < kTasks; ++k) {
    TaskContext ctx;
    ctx.subtask = k;
    ctx.parallelism = kTasks;
    ASSERT_OK_AND_ASSIGN(auto reader, bound[0].make_source(ctx));
    std::vector<std::unique_ptr<Operator>> ops;
    for (size_t i = 1; i < bound.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(auto op, bound[i].make_operator(ctx));
      ops.push_back(std::move(op));
    }
    NoOutput none;
    ChainOutput to_sink(ops[3].get(), &none);
    ChainOutput to_project(ops[2].get(), &to_sink);
    ChainOutput to_filter(ops[1].get(), &to_project);
    for (;;) {
      ASSERT_OK_AND_ASSIGN(auto step, reader->Next());
      if (step.kind == SourceReader::Step::Kind::kEnd) break;
      ASSERT_EQ(step.kind, SourceReader::Step::Kind::kBatch);
      ASSERT_OK(ops[0]->Process(0, step.batch, &to_filter));
    }
    for (auto& op : ops) ASSERT_OK(op->Finish(&none));
    for (auto& op : ops) ASSERT_OK(op->Commit());
  }
  ASSERT_OK_AND_ASSIGN(auto table, options.collected->Table("out"));
  ASSERT_OK_AND_ASSIGN(auto got, table->CombineChunksToBatch());

  ASSERT_OK_AND_ASSIGN(auto all, GenerateTableRows(source, 0, source.rows));
  namespace cp = arrow::compute;
  ASSERT_OK_AND_ASSIGN(auto usd, cp::CallFunction("multiply_checked",
                                                  {all->column(1), arrow::MakeScalar(1.1)}));
  ASSERT_OK_AND_ASSIGN(auto rich, cp::CallFunction("greater", {usd, arrow::MakeScalar(5000.0)}));
  ASSERT_OK_AND_ASSIGN(auto few, cp::CallFunction("less", {all->column(0),
                                                           arrow::MakeScalar(int64_t{50})}));
  ASSERT_OK_AND_ASSIGN(auto mask, cp::CallFunction("and_kleene", {rich, few}));
  ASSERT_OK_AND_ASSIGN(auto users, cp::Filter(all->column(0), mask));
  ASSERT_OK_AND_ASSIGN(auto kept_usd, cp::Filter(usd, mask));
  auto expected = arrow::RecordBatch::Make(bound[3].output_schema, users.length(),
                                           {users.make_array(), kept_usd.make_array()});
  ASSERT_GT(expected->num_rows(), 100);
  ASSERT_BATCHES_EQUAL(*expected, *got);
}

}  // namespace
}  // namespace sabot
