#include "sabot/dataflow/aggregate_operator.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/writer.h>

#include "sabot/dataflow/aggregation_testing.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

// Results are checked against the independent reference of aggregation_testing.h (a std::map
// per key, plain C++ loops); changelogs are replayed into a table of current results first.

namespace sabot {
namespace {

namespace fs = std::filesystem;
using testing::ArrivalOrder;
using testing::InputSchema;
using testing::MaybeValue;
using testing::RandomInput;

using Collector = testing::CollectingOutput;

OperatorSpec AggregateSpecOf(std::vector<AggregateSpec> aggregates) {
  OperatorSpec spec;
  spec.id = 3;
  spec.name = "agg";
  spec.params = AggregateParams{std::move(aggregates)};
  return spec;
}

// Every function, over value columns of four types and a key column (a function may read one).
std::vector<AggregateSpec> EveryFunction() {
  return {Count(),
          Count("v_int"),
          Sum("v_int"),
          Sum("v_dbl", "total"),
          Min("v_str"),
          Max("v_int"),
          Mean("v_i32"),
          CountDistinct("v_str"),
          First("v_str"),
          Last("v_dbl"),
          ApproxMedian("v_int"),
          Min("k_ts")};
}

// What an unbounded input can maintain: every function but count_distinct and approx_median.
std::vector<AggregateSpec> ChangelogFunctions() {
  return {Count(),      Count("v_int"), Sum("v_int"),   Sum("v_dbl", "total"), Min("v_str"),
          Max("v_int"), Mean("v_i32"),  Mean("v_dbl"),  First("v_str"),        Last("v_dbl"),
          Min("k_ts"),  Max("k_dict")};
}

// ---------------------------------------------------------------------------------------------
// Bounded input, through the local executor.

class AggregateJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_aggregate_operator_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    input_ = RandomInput(77, 14);
    auto table = arrow::Table::FromRecordBatches(InputSchema(), input_).ValueOrDie();
    auto out = arrow::io::FileOutputStream::Open((dir_ / "input.parquet").string()).ValueOrDie();
    ASSERT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 500));
    ASSERT_OK(out->Close());
  }
  void TearDown() override { fs::remove_all(dir_); }

  FileSourceParams Source() const {
    return FileSourceParams{FileFormat::kParquet, {(dir_ / "input.parquet").string()}, {}, {}};
  }

  // Runs the plan and returns what collect sink "out" got, as one batch.
  std::shared_ptr<arrow::RecordBatch> Run(const LogicalPlan& plan) {
    auto collected = std::make_shared<CollectedOutput>();
    LocalExecutorOptions options;
    options.threads = 2;
    options.collected = collected;
    auto report = RunLocalJob(plan, options);
    EXPECT_OK(report.status());
    if (!report.ok()) return nullptr;
    auto table = collected->Table("out").ValueOrDie();
    return table->CombineChunksToBatch().ValueOrDie();
  }

  fs::path dir_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> input_;
};

TEST_F(AggregateJobTest, KeyedAggregateGivesOneRowPerKeyAtEveryParallelismAndShuffleMode) {
  const std::vector<std::string> keys = {"k_int", "k_str", "k_ts"};
  struct Shape {
    int32_t sources;
    int32_t aggregates;
  };
  for (Shape shape : {Shape{1, 1}, Shape{10, 5}, Shape{3, 7}}) {
    for (ShuffleMode mode : {ShuffleMode::kPipelined, ShuffleMode::kBlocking}) {
      SCOPED_TRACE(std::to_string(shape.sources) + " -> " + std::to_string(shape.aggregates) +
                   " " + std::string(ShuffleModeName(mode)));
      PlanBuilder b;
      b.SetOptions(PlanOptions{.shuffle_mode = mode, .chaining = true});
      b.Source(Source(), shape.sources)
          .KeyBy(keys)
          .Aggregate(EveryFunction(), shape.aggregates, "agg")
          .Sink(CollectSinkParams{}, {}, "out");
      ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
      auto result = Run(plan);
      ASSERT_NE(result, nullptr);
      // 6 x 6 x 4 key combinations (nulls included) over ~4500 rows: most appear.
      EXPECT_GT(result->num_rows(), 100);
      EXPECT_EQ(result->schema()->field(3)->name(), "count");
      EXPECT_EQ(result->schema()->field(6)->name(), "total");
      // One source task reads the row groups in order: first and last are exact.
      testing::ExpectAggregation(
          *InputSchema(), keys, EveryFunction(), input_, *result,
          shape.sources == 1 ? ArrivalOrder::kKnown : ArrivalOrder::kInterleaved);
    }
  }
}

TEST_F(AggregateJobTest, DictionaryKeysGroupByValueAcrossBatchesWithOtherDictionaries) {
  PlanBuilder b;
  b.Source(Source(), 2).KeyBy({"k_dict"}).Aggregate({Count(), Sum("v_int")}, 3, "agg")
      .Sink(CollectSinkParams{}, {}, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  auto result = Run(plan);
  ASSERT_NE(result, nullptr);
  testing::ExpectAggregation(*InputSchema(), {"k_dict"}, {Count(), Sum("v_int")}, input_,
                             *result);
}

TEST_F(AggregateJobTest, GlobalAggregateGivesOneRow) {
  PlanBuilder b;
  b.Source(Source(), 3).Aggregate(EveryFunction(), 1, "agg").Sink(CollectSinkParams{}, {}, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  auto result = Run(plan);
  ASSERT_NE(result, nullptr);
  ASSERT_EQ(result->num_rows(), 1);
  testing::ExpectAggregation(*InputSchema(), {}, EveryFunction(), input_, *result,
                             ArrivalOrder::kInterleaved);
}

TEST_F(AggregateJobTest, BindingErrorsNameTheOperator) {
  PlanBuilder b;
  b.Source(Source(), 2).KeyBy({"k_int"}).Aggregate({Sum("v_str")}, 2, "agg")
      .Sink(CollectSinkParams{}, {}, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  LocalExecutorOptions options;
  options.collected = std::make_shared<CollectedOutput>();
  ASSERT_RAISES_WITH(TypeError, "operator 'agg' (aggregate): aggregation: sum(v_str)",
                     RunLocalJob(plan, options).status());
}

TEST_F(AggregateJobTest, StateOverItsBudgetSpillsAndGivesTheSameResult) {
  // Keys with thousands of values, a state budget of 16 KiB per task: every task spills, and
  // partitions spill again.
  const std::vector<std::string> keys = {"v_int"};
  const std::vector<AggregateSpec> specs = {Count(), Sum("v_dbl"), Min("v_str"), Last("v_i32"),
                                            CountDistinct("k_str"), Mean("v_i32")};
  const fs::path spill = dir_ / "spill";
  for (auto [sources, aggregates] : {std::pair{1, 1}, std::pair{10, 5}, std::pair{3, 7}}) {
    SCOPED_TRACE(std::to_string(sources) + " -> " + std::to_string(aggregates));
    fs::remove_all(spill);
    PlanBuilder b;
    b.Source(Source(), sources).KeyBy(keys).Aggregate(specs, aggregates, "agg")
        .Sink(CollectSinkParams{}, {}, "out");
    ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
    auto collected = std::make_shared<CollectedOutput>();
    LocalExecutorOptions options;
    options.threads = 2;
    options.collected = collected;
    options.state_budget_per_task = 16 * 1024;
    options.spill_directory = spill.string();
    ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
    for (const OperatorReport& op : report.operators) {
      if (op.name == "agg") {
        EXPECT_GT(op.state_spilled_bytes, 10 * 1024);
      }
    }
    ASSERT_OK_AND_ASSIGN(auto table, collected->Table("out"));
    ASSERT_OK_AND_ASSIGN(auto result, table->CombineChunksToBatch());
    EXPECT_GT(result->num_rows(), 1000);
    testing::ExpectAggregation(*InputSchema(), keys, specs, input_, *result,
                               sources == 1 ? ArrivalOrder::kKnown : ArrivalOrder::kInterleaved);
    // Tasks spilled (their directories were made under `spill`), and their files are gone with
    // the job.
    ASSERT_TRUE(fs::exists(spill));
    EXPECT_TRUE(fs::is_empty(spill));
  }
}

// ---------------------------------------------------------------------------------------------
// The operator bound directly.

TEST(AggregateOperatorTest, BoundedModeEmitsAtFinishAndPassesWatermarks) {
  OperatorPlanContext context;
  context.input_keys = {"k_str"};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(AggregateSpecOf(EveryFunction()),
                                                {InputSchema()}, {}, context));
  ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));
  Collector out;
  auto input = RandomInput(5, 6);
  for (const auto& batch : input) ASSERT_OK(op->Process(0, batch, &out));
  ASSERT_OK(op->OnWatermark(1234, &out));
  EXPECT_TRUE(out.batches.empty());
  EXPECT_EQ(out.watermarks, std::vector<WatermarkMs>{1234});
  ASSERT_OK(op->Finish(&out));
  ASSERT_EQ(out.batches.size(), 1u);
  EXPECT_TRUE(out.batches[0]->schema()->Equals(*bound.output_schema));
  testing::ExpectAggregation(*InputSchema(), {"k_str"}, EveryFunction(), input, *out.batches[0]);
  int64_t rows = 0;
  for (const auto& batch : input) rows += batch->num_rows();
  EXPECT_EQ(op->rows_in(), rows);
  EXPECT_EQ(op->rows_out(), out.batches[0]->num_rows());
}

// A bounded aggregate snapshotted twice mid-input (its state as partial results, spilled
// partitions read back) and restored from the second snapshot into a new instance fed the rest
// gives the reference's result; the first instance goes on and the tables it put never change.
// An aggregate without a partial form (count_distinct) refuses to snapshot, naming itself.
TEST(AggregateOperatorTest, BoundedStateRestoresFromASnapshot) {
  const auto specs = ChangelogFunctions();
  auto input = RandomInput(41, 30);
  for (int64_t budget : {int64_t{0}, int64_t{16} << 10}) {
    for (std::vector<std::string> keys :
         std::vector<std::vector<std::string>>{{"k_str"}, {"v_int", "k_str"}, {}}) {
      SCOPED_TRACE(std::to_string(keys.size()) + " keys, budget " + std::to_string(budget));
      OperatorPlanContext context;
      context.input_keys = keys;
      ASSERT_OK_AND_ASSIGN(auto bound,
                           BindOperator(AggregateSpecOf(specs), {InputSchema()}, {}, context));
      OperatorSpec spec;
      spec.name = "agg";
      TaskContext task;
      task.spec = &spec;
      task.state_budget_bytes = budget;
      ASSERT_OK_AND_ASSIGN(auto first, bound.make_operator(task));
      Collector ignored;
      testing::MemoryState early, parts;
      for (size_t i = 0; i < 20; ++i) {
        if (i == 12) ASSERT_OK(first->Snapshot(1, &early));
        ASSERT_OK(first->Process(0, input[i], &ignored));
      }
      ASSERT_OK(first->Snapshot(2, &parts));
      for (size_t i = 20; i < input.size(); ++i) ASSERT_OK(first->Process(0, input[i], &ignored));
      ASSERT_OK(first->Finish(&ignored));
      EXPECT_TRUE(early.Unchanged());
      EXPECT_TRUE(parts.Unchanged());
      ASSERT_OK_AND_ASSIGN(auto uninterrupted,
                           arrow::Table::FromRecordBatches(bound.output_schema, ignored.batches));
      ASSERT_OK_AND_ASSIGN(auto whole, uninterrupted->CombineChunksToBatch());
      testing::ExpectAggregation(*InputSchema(), keys, specs, input, *whole);

      ASSERT_OK_AND_ASSIGN(auto second, bound.make_operator(task));
      ASSERT_OK(second->Restore(2, &parts));
      Collector out;
      for (size_t i = 20; i < input.size(); ++i) ASSERT_OK(second->Process(0, input[i], &out));
      ASSERT_OK(second->Finish(&out));
      ASSERT_OK_AND_ASSIGN(auto table,
                           arrow::Table::FromRecordBatches(bound.output_schema, out.batches));
      ASSERT_OK_AND_ASSIGN(auto result, table->CombineChunksToBatch());
      testing::ExpectAggregation(*InputSchema(), keys, specs, input, *result);
    }
  }
  OperatorPlanContext context;
  context.input_keys = {"k_str"};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(AggregateSpecOf({Sum("v_int"),
                                                                 CountDistinct("v_str")}),
                                                {InputSchema()}, {}, context));
  OperatorSpec spec;
  spec.name = "agg";
  TaskContext task;
  task.spec = &spec;
  ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(task));
  testing::MemoryState parts;
  ASSERT_RAISES_WITH(NotImplemented, "aggregate 'agg' cannot snapshot its state: count_distinct",
                     op->Snapshot(1, &parts));
}

TEST(AggregateOperatorTest, SpillsToItsDirectoryAndRemovesItAtFinishOrAbort) {
  const fs::path spill = fs::temp_directory_path() /
                         ("sabot_aggregate_spill_test_" + std::to_string(getpid()));
  fs::remove_all(spill);
  const std::vector<std::string> keys = {"v_int", "k_str"};
  OperatorPlanContext context;
  context.input_keys = keys;
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(AggregateSpecOf(EveryFunction()),
                                                {InputSchema()}, {}, context));
  TaskContext task;
  task.state_budget_bytes = 8 * 1024;
  task.spill_directory = spill.string();
  auto input = RandomInput(7, 30);
  for (bool abort : {false, true}) {
    SCOPED_TRACE(abort ? "abort" : "finish");
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(task));
    Collector out;
    for (const auto& batch : input) ASSERT_OK(op->Process(0, batch, &out));
    // One directory for the task, holding partition files.
    ASSERT_TRUE(fs::exists(spill));
    int64_t files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(spill)) {
      files += entry.is_regular_file() ? 1 : 0;
    }
    EXPECT_GT(files, 0);
    if (abort) {
      op->Abort();
      // Abort drops the files at once, not when the instance is destroyed.
      EXPECT_TRUE(!fs::exists(spill) || fs::is_empty(spill));
    } else {
      ASSERT_OK(op->Finish(&out));
      EXPECT_GT(op->state_spilled_bytes(), 0);
      ASSERT_OK_AND_ASSIGN(auto result, arrow::Table::FromRecordBatches(bound.output_schema,
                                                                        out.batches));
      ASSERT_OK_AND_ASSIGN(auto batch, result->CombineChunksToBatch());
      // One task, input in order: exact, first and last included.
      testing::ExpectAggregation(*InputSchema(), keys, EveryFunction(), input, *batch);
    }
    op.reset();
    EXPECT_TRUE(fs::is_empty(spill));
  }
  fs::remove_all(spill);
}

TEST(AggregateOperatorTest, AWindowedAggregateIsNotThisOperator) {
  OperatorSpec window;
  window.name = "w";
  window.params = WindowParams{};
  OperatorPlanContext context;
  context.input_keys = {"k_str"};
  context.input_window = &window;
  const OperatorSpec spec = AggregateSpecOf({Count()});
  ASSERT_RAISES_WITH(Invalid, "an aggregate after window 'w' is a windowed aggregate",
                     BindAggregateOperator(spec, std::get<AggregateParams>(spec.params),
                                           InputSchema(), context));
}

// Replays a changelog into the current result per key, checking its rules: "+I" only for a new
// key, "-U" carrying exactly the key's current result and followed (in its batch) by the key's
// "+U", "+U" only after a "-U" of its key in the same batch.
class ChangelogReplay {
 public:
  ChangelogReplay(size_t num_keys, size_t num_aggregates)
      : num_keys_(num_keys), num_aggregates_(num_aggregates) {}

  void Apply(const arrow::RecordBatch& batch) {
    ASSERT_EQ(batch.schema()->field(batch.num_columns() - 1)->name(), "op");
    const auto& op = static_cast<const arrow::StringArray&>(*batch.column(batch.num_columns() - 1));
    std::vector<int> key_columns;
    for (size_t k = 0; k < num_keys_; ++k) key_columns.push_back(static_cast<int>(k));
    std::set<std::string> retracted;
    for (int64_t row = 0; row < batch.num_rows(); ++row) {
      const std::string key = testing::KeyOf(batch, key_columns, row);
      std::vector<MaybeValue> values;
      for (size_t a = 0; a < num_aggregates_; ++a) {
        values.push_back(testing::ValueAt(*batch.column(static_cast<int>(num_keys_ + a)), row));
      }
      const std::string kind(op.GetView(row));
      if (kind == kChangelogInsert) {
        ASSERT_EQ(current_.count(key), 0u) << "+I of a known key";
        current_[key] = std::move(values);
      } else if (kind == kChangelogRetract) {
        ASSERT_EQ(current_.count(key), 1u) << "-U of an unknown key";
        ASSERT_EQ(current_[key], values) << "-U does not carry the current result";
        ASSERT_TRUE(retracted.insert(key).second) << "two -U of one key in a batch";
        ++retractions_;
      } else if (kind == kChangelogUpdate) {
        ASSERT_EQ(retracted.erase(key), 1u) << "+U without a -U before it";
        current_[key] = std::move(values);
      } else {
        FAIL() << "unknown op '" << kind << "'";
      }
    }
    EXPECT_TRUE(retracted.empty()) << "a -U without its +U";
  }

  const testing::ResultRows& current() const { return current_; }
  int64_t retractions() const { return retractions_; }

 private:
  size_t num_keys_;
  size_t num_aggregates_;
  testing::ResultRows current_;
  int64_t retractions_ = 0;
};

TEST(AggregateOperatorTest, UnboundedInputGivesAChangelogWhoseReplayIsTheResult) {
  const auto specs = ChangelogFunctions();
  for (std::vector<std::string> keys : std::vector<std::vector<std::string>>{
           {"k_int", "k_str"}, {"k_dict"}, {"k_ts", "k_int", "k_dict"}, {}}) {
    SCOPED_TRACE(keys.size());
    OperatorPlanContext context;
    context.input_keys = keys;
    context.bounded_input = false;
    ASSERT_OK_AND_ASSIGN(auto bound,
                         BindOperator(AggregateSpecOf(specs), {InputSchema()}, {}, context));
    auto output = bound.output_schema;
    ASSERT_EQ(output->num_fields(), static_cast<int>(keys.size() + specs.size() + 1));
    EXPECT_TRUE(output->field(output->num_fields() - 1)->Equals(
        *arrow::field("op", arrow::utf8(), /*nullable=*/false)));
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(TaskContext{}));

    // Enough batches over few keys that the state compacts several times.
    auto input = RandomInput(99, 40);
    Collector out;
    ChangelogReplay replay(keys.size(), specs.size());
    std::vector<std::shared_ptr<arrow::RecordBatch>> seen;
    for (size_t i = 0; i < input.size(); ++i) {
      const size_t emitted = out.batches.size();
      ASSERT_OK(op->Process(0, input[i], &out));
      seen.push_back(input[i]);
      if (input[i]->num_rows() == 0) {
        EXPECT_EQ(out.batches.size(), emitted) << "an empty batch changes nothing";
        continue;
      }
      ASSERT_EQ(out.batches.size(), emitted + 1);
      EXPECT_TRUE(out.batches.back()->schema()->Equals(*output));
      replay.Apply(*out.batches.back());
      if (::testing::Test::HasFatalFailure()) return;
      if (i % 7 == 0 || i + 1 == input.size()) {
        SCOPED_TRACE("after batch " + std::to_string(i));
        testing::ExpectRowsMatch(testing::GroupRows(*InputSchema(), keys, specs, seen), specs,
                                 replay.current());
      }
    }
    EXPECT_GE(replay.retractions(), 30);  // the global group: one per batch after the first
    ASSERT_OK(op->OnWatermark(99, &out));
    EXPECT_EQ(out.watermarks, std::vector<WatermarkMs>{99});
    const size_t emitted = out.batches.size();
    ASSERT_OK(op->Finish(&out));
    EXPECT_EQ(out.batches.size(), emitted) << "the changelog is complete before the end";
  }
}

// An updating aggregate keeps one partial row per key: past the task's state budget its
// partitions (by key hash) spill, updates of spilled keys wait and are folded in later, in order.
// The changelog stays valid (every -U carries the current result) and its replay at the end is
// the result, under a budget far below the state, with the bytes spilled reported.
TEST(AggregateOperatorTest, UnboundedStatePastItsBudgetSpillsAndStaysExact) {
  const auto specs = ChangelogFunctions();
  for (std::vector<std::string> keys :
       std::vector<std::vector<std::string>>{{"k_int", "k_str"}, {"k_dict"}, {}}) {
    SCOPED_TRACE(keys.size());
    OperatorPlanContext context;
    context.input_keys = keys;
    context.bounded_input = false;
    ASSERT_OK_AND_ASSIGN(auto bound,
                         BindOperator(AggregateSpecOf(specs), {InputSchema()}, {}, context));
    auto input = RandomInput(5, 60);
    TaskContext task;
    task.state_budget_bytes = 1024;
    ASSERT_OK_AND_ASSIGN(auto op, bound.make_operator(task));
    Collector out;
    ChangelogReplay replay(keys.size(), specs.size());
    for (const auto& batch : input) ASSERT_OK(op->Process(0, batch, &out));
    ASSERT_OK(op->Finish(&out));
    for (const auto& batch : out.batches) {
      replay.Apply(*batch);
      if (::testing::Test::HasFatalFailure()) return;
    }
    testing::ExpectRowsMatch(testing::GroupRows(*InputSchema(), keys, specs, input), specs,
                             replay.current());
    if (!keys.empty()) {
      EXPECT_GT(op->state_spilled_bytes(), 0);
    }
  }
}

// Snapshot after part of the input, a new instance restored from it, fed the rest: its
// changelog continues the first one's exactly (every -U carries the result the first instance
// emitted last), with and without spilled state; the tables put are never changed afterwards.
TEST(AggregateOperatorTest, UnboundedStateRestoresFromASnapshot) {
  const auto specs = ChangelogFunctions();
  for (int64_t budget : {int64_t{0}, int64_t{1024}}) {
    for (std::vector<std::string> keys :
         std::vector<std::vector<std::string>>{{"k_int", "k_str"}, {"k_dict"}, {}}) {
      SCOPED_TRACE(std::to_string(keys.size()) + " keys, budget " + std::to_string(budget));
      OperatorPlanContext context;
      context.input_keys = keys;
      context.bounded_input = false;
      ASSERT_OK_AND_ASSIGN(auto bound,
                           BindOperator(AggregateSpecOf(specs), {InputSchema()}, {}, context));
      auto input = RandomInput(31, 40);
      TaskContext task;
      task.state_budget_bytes = budget;
      ASSERT_OK_AND_ASSIGN(auto first, bound.make_operator(task));
      Collector out;
      for (size_t i = 0; i < 25; ++i) ASSERT_OK(first->Process(0, input[i], &out));
      testing::MemoryState parts;
      ASSERT_OK(first->Snapshot(1, &parts));
      // The first instance goes on (a checkpoint does not stop it); its snapshot must not change.
      Collector ignored;
      for (size_t i = 25; i < input.size(); ++i) ASSERT_OK(first->Process(0, input[i], &ignored));
      ASSERT_OK(first->Finish(&ignored));
      EXPECT_TRUE(parts.Unchanged());
      // The restored instance's state past the budget is on disk again at once, in a
      // directory of its own.
      const fs::path spill = fs::temp_directory_path() /
                             ("sabot_changelog_restore_test_" + std::to_string(getpid()));
      fs::remove_all(spill);
      task.spill_directory = spill.string();
      ASSERT_OK_AND_ASSIGN(auto second, bound.make_operator(task));
      ASSERT_OK(second->Restore(1, &parts));
      if (budget > 0 && keys.size() == 2) {  // k_dict has a few values: its state fits
        int64_t files = 0;
        if (fs::exists(spill)) {
          for (const auto& entry : fs::recursive_directory_iterator(spill)) {
            files += entry.is_regular_file() ? 1 : 0;
          }
        }
        EXPECT_GT(files, 0) << "a restored state over its budget stays in memory";
      }
      for (size_t i = 25; i < input.size(); ++i) ASSERT_OK(second->Process(0, input[i], &out));
      ASSERT_OK(second->Finish(&out));
      ChangelogReplay replay(keys.size(), specs.size());
      for (const auto& batch : out.batches) {
        replay.Apply(*batch);
        if (::testing::Test::HasFatalFailure()) return;
      }
      testing::ExpectRowsMatch(testing::GroupRows(*InputSchema(), keys, specs, input), specs,
                               replay.current());
      second.reset();
      EXPECT_TRUE(!fs::exists(spill) || fs::is_empty(spill));
      fs::remove_all(spill);
    }
  }
}

TEST(AggregateOperatorTest, UnboundedInputRefusesWhatItCannotMaintain) {
  OperatorPlanContext context;
  context.input_keys = {"k_int"};
  context.bounded_input = false;
  ASSERT_RAISES_WITH(NotImplemented, "count_distinct(v_str) cannot be maintained incrementally",
                     BindOperator(AggregateSpecOf({Count(), CountDistinct("v_str")}),
                                  {InputSchema()}, {}, context));
  ASSERT_RAISES_WITH(NotImplemented, "put a window before the aggregate",
                     BindOperator(AggregateSpecOf({ApproxMedian("v_dbl")}), {InputSchema()}, {},
                                  context));
  auto decimals = arrow::schema({arrow::field("k_int", arrow::int32()),
                                 arrow::field("d", arrow::decimal128(12, 2))});
  ASSERT_RAISES_WITH(NotImplemented, "mean(d)",
                     BindOperator(AggregateSpecOf({Mean("d")}), {decimals}, {}, context));
  // The bounded form of the same aggregates binds.
  context.bounded_input = true;
  EXPECT_OK(BindOperator(AggregateSpecOf({CountDistinct("v_str"), ApproxMedian("v_dbl")}),
                         {InputSchema()}, {}, context)
                .status());
}

}  // namespace
}  // namespace sabot
