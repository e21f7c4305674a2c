#include "sabot/dataflow/function_map.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/dataflow/explain.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::Table> Values(int64_t rows) {
  arrow::Int64Builder values;
  for (int64_t r = 0; r < rows; ++r) EXPECT_OK(values.Append(r));
  auto schema = arrow::schema({arrow::field("value", arrow::int64())});
  return arrow::Table::Make(schema, {values.Finish().ValueOrDie()});
}

// value -> value, tripled = value * 3 (plain loops: the reference is computed independently).
ProvidedFunction Tripler(std::atomic<int64_t>* calls) {
  ProvidedFunction f;
  f.output_schema = [](const std::shared_ptr<arrow::Schema>& input)
      -> arrow::Result<std::shared_ptr<arrow::Schema>> {
    return input->AddField(input->num_fields(), arrow::field("tripled", arrow::int64()));
  };
  f.call = [calls](const std::shared_ptr<arrow::RecordBatch>& batch)
      -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    ++*calls;
    const auto& in = static_cast<const arrow::Int64Array&>(*batch->column(0));
    arrow::Int64Builder out;
    for (int64_t i = 0; i < in.length(); ++i) ARROW_RETURN_NOT_OK(out.Append(in.Value(i) * 3));
    ARROW_ASSIGN_OR_RAISE(auto tripled, out.Finish());
    return batch->AddColumn(batch->num_columns(), "tripled", tripled);
  };
  return f;
}

arrow::Result<LogicalPlan> Plan(int32_t parallelism) {
  PlanBuilder b;
  b.Source(TableSourceParams{"input", 1000, {}}, 2, "src")
      .FunctionMap("triple", parallelism, "py")
      .Sink(CollectSinkParams{}, {}, "out");
  return b.Build();
}

BindOptions Bind(std::shared_ptr<const ProvidedFunctions> functions,
                 std::shared_ptr<CollectedOutput> collected) {
  BindOptions options = BindOptionsOf(LocalExecutorOptions{});
  options.collected = std::move(collected);
  auto tables = std::make_shared<ProvidedTables>();
  EXPECT_OK(tables->Add("input", Values(10000)));
  options.tables = tables;
  options.functions = std::move(functions);
  return options;
}

TEST(FunctionMapTest, RunsTheProvidedFunctionOnEveryBatch) {
  std::atomic<int64_t> calls{0};
  auto functions = std::make_shared<ProvidedFunctions>();
  ASSERT_OK(functions->Add("triple", Tripler(&calls)));
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, Plan(3));
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = std::make_shared<CollectedOutput>();
  ASSERT_OK_AND_ASSIGN(auto bound, BindJob(plan, Bind(functions, options.collected)));
  ASSERT_OK_AND_ASSIGN(JobReport report, RunBoundJob(bound, options));
  ASSERT_OK_AND_ASSIGN(auto out, options.collected->Table("out"));
  ASSERT_EQ(out->num_rows(), 10000);
  EXPECT_GT(calls.load(), 0);
  std::vector<bool> seen(10000, false);
  ASSERT_OK_AND_ASSIGN(auto combined, out->CombineChunksToBatch());
  const auto& v = static_cast<const arrow::Int64Array&>(*combined->GetColumnByName("value"));
  const auto& t = static_cast<const arrow::Int64Array&>(*combined->GetColumnByName("tripled"));
  for (int64_t i = 0; i < combined->num_rows(); ++i) {
    ASSERT_EQ(t.Value(i), v.Value(i) * 3);
    ASSERT_FALSE(seen[v.Value(i)]);
    seen[v.Value(i)] = true;
  }
}

TEST(FunctionMapTest, AProcessWithoutFunctionsRefusesThePlan) {
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, Plan(1));
  auto status = BindJob(plan, Bind(nullptr, std::make_shared<CollectedOutput>())).status();
  ASSERT_RAISES_WITH(NotImplemented, "operator 'py' (function_map): function 'triple'", status);
  ASSERT_NE(status.message().find("provides no functions"), std::string::npos);
}

TEST(FunctionMapTest, AnUnknownFunctionIsAKeyError) {
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, Plan(1));
  auto functions = std::make_shared<ProvidedFunctions>();
  std::atomic<int64_t> calls{0};
  ASSERT_OK(functions->Add("other", Tripler(&calls)));
  ASSERT_RAISES_WITH(KeyError, "function 'triple' is not provided (provided: 'other')",
                     BindJob(plan, Bind(functions, std::make_shared<CollectedOutput>())).status());
}

TEST(FunctionMapTest, AFunctionErrorOrAWrongSchemaFailsTheJob) {
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, Plan(2));
  std::atomic<int64_t> calls{0};
  ProvidedFunction failing = Tripler(&calls);
  failing.call = [](const std::shared_ptr<arrow::RecordBatch>&)
      -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    return arrow::Status::ExecutionError("ValueError: bad row");
  };
  ProvidedFunction wrong = Tripler(&calls);
  wrong.call = [](const std::shared_ptr<arrow::RecordBatch>& batch)
      -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> { return batch; };
  for (auto [f, code, text] :
       {std::tuple{failing, arrow::StatusCode::ExecutionError, "function 'triple': ValueError"},
        std::tuple{wrong, arrow::StatusCode::TypeError, "returned a batch of schema"}}) {
    auto functions = std::make_shared<ProvidedFunctions>();
    ASSERT_OK(functions->Add("triple", f));
    LocalExecutorOptions options;
    options.threads = 2;
    options.collected = std::make_shared<CollectedOutput>();
    ASSERT_OK_AND_ASSIGN(auto bound, BindJob(plan, Bind(functions, options.collected)));
    auto status = RunBoundJob(bound, options).status();
    ASSERT_EQ(status.code(), code) << status.ToString();
    ASSERT_NE(status.message().find(text), std::string::npos) << status.ToString();
    ASSERT_NE(status.message().find("'py'"), std::string::npos) << status.ToString();
  }
}

TEST(FunctionMapTest, TravelsAsJsonAndExplainsItsFunction) {
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, Plan(1));
  ASSERT_OK_AND_ASSIGN(std::string json, PlanToJson(plan));
  ASSERT_NE(json.find("\"function_map\""), std::string::npos) << json;
  ASSERT_OK_AND_ASSIGN(LogicalPlan back, PlanFromJson(json));
  ASSERT_TRUE(back.Equals(plan));
  ASSERT_OK_AND_ASSIGN(auto graph, ExecutionGraph::Make(plan));
  ASSERT_NE(Explain(graph).find("function_map 'triple'"), std::string::npos) << Explain(graph);
}

TEST(FunctionMapTest, ProvidedFunctionsNeedANameAndBothCallables) {
  ProvidedFunctions functions;
  ASSERT_RAISES_WITH(Invalid, "needs a name", functions.Add("", ProvidedFunction{}));
  ASSERT_RAISES_WITH(Invalid, "needs both", functions.Add("f", ProvidedFunction{}));
  ASSERT_RAISES_WITH(KeyError, "(provided: none)", functions.Get("f").status());
}

}  // namespace
}  // namespace sabot
