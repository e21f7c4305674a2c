#include "sabot/dataflow/collect_sink.h"

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>

#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::Table> Values(int64_t rows) {
  arrow::Int64Builder values;
  for (int64_t r = 0; r < rows; ++r) EXPECT_OK(values.Append(r));
  return arrow::Table::Make(arrow::schema({arrow::field("v", arrow::int64())}),
                            {values.Finish().ValueOrDie()});
}

struct Collection {
  std::set<const uint8_t*> addresses;  // the data buffer of every collected batch
  int64_t rows = 0;
  int64_t sum = 0;  // of v, read after the job ended (and freed its shuffle memory)
};

Collection Collected(const LogicalPlan& plan,
                                                       std::shared_ptr<arrow::Table> table) {
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = std::make_shared<CollectedOutput>();
  auto tables = std::make_shared<ProvidedTables>();
  EXPECT_OK(tables->Add("t", table));
  options.tables = tables;
  EXPECT_OK(RunLocalJob(plan, options).status());
  Collection out;
  for (int32_t subtask = 0; subtask < 3; ++subtask) {
    for (const auto& batch : options.collected->Batches("out", subtask)) {
      out.addresses.insert(batch->column_data(0)->buffers[1]->data());
      out.rows += batch->num_rows();
      const auto& v = static_cast<const arrow::Int64Array&>(*batch->column(0));
      for (int64_t i = 0; i < v.length(); ++i) out.sum += v.Value(i);
    }
  }
  return out;
}

TEST(CollectSinkTest, KeepsBatchesOfItsOwnChainAndCopiesShuffledOnes) {
  auto table = Values(10000);
  const uint8_t* producer = table->column(0)->chunk(0)->data()->buffers[1]->data();
  constexpr int64_t kSum = 10000 * 9999 / 2;
  {
    // Source -> collect in one chain: slices of the table's own buffer.
    PlanBuilder b;
    b.Source(TableSourceParams{"t", 1000, {}}, 1, "src").Sink(CollectSinkParams{}, {}, "out");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    Collection c = Collected(plan, table);
    ASSERT_EQ(c.rows, 10000);
    ASSERT_EQ(c.sum, kSum);
    EXPECT_EQ(c.addresses, std::set<const uint8_t*>{producer});
  }
  {
    // Through a shuffle the batches view the job's shuffle memory: they are copied out, and
    // still read right after the job freed that memory (ASan would see a use after free).
    PlanBuilder b;
    b.Source(TableSourceParams{"t", 1000, {}}, 2, "src")
        .Rebalance()
        .Sink(CollectSinkParams{}, 3, "out");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    Collection c = Collected(plan, table);
    ASSERT_EQ(c.rows, 10000);
    ASSERT_EQ(c.sum, kSum);
    EXPECT_EQ(c.addresses.count(producer), 0u);
  }
}

// Checkpoints: rows before the last complete checkpoint are kept, rows after it are dropped on
// restore, so a recovered collect output equals a failure-free run's.
std::shared_ptr<arrow::RecordBatch> Batch(int64_t first, int64_t n) {
  arrow::Int64Builder values;
  for (int64_t r = first; r < first + n; ++r) EXPECT_OK(values.Append(r));
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::int64())}), n,
                                  {values.Finish().ValueOrDie()});
}

TEST(CollectSinkTest, ARestoredTaskCollectsExactlyAFailureFreeRunsRows) {
  auto schema = Batch(0, 0)->schema();
  OperatorSpec spec;
  spec.name = "out";
  spec.params = CollectSinkParams{};
  BindOptions options;
  options.collected = std::make_shared<CollectedOutput>();
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(spec, {schema}, options));
  TaskContext ctx;
  ctx.subtask = 1;
  ctx.parallelism = 2;
  testing::NoOutput none;
  testing::MemoryState checkpoint1;
  testing::MemoryState checkpoint2;
  testing::MemoryState checkpoint3;
  {
    ASSERT_OK_AND_ASSIGN(auto sink, bound.make_operator(ctx));
    ASSERT_OK(sink->Process(0, Batch(0, 5), &none));
    ASSERT_OK(sink->Snapshot(1, checkpoint1.writer()));
    ASSERT_OK(sink->Process(0, Batch(5, 3), &none));
    ASSERT_OK(sink->Snapshot(2, checkpoint2.writer()));
    ASSERT_OK(sink->CheckpointComplete(1));  // rows 0 .. 4 are published
    ASSERT_EQ(options.collected->Batches("out", 1).size(), 1u);
    ASSERT_OK(sink->Process(0, Batch(8, 4), &none));
    ASSERT_OK(sink->Snapshot(3, checkpoint3.writer()));  // never completes
    ASSERT_OK(sink->Process(0, Batch(12, 1), &none));
    // The crash: checkpoint 2 completed, the task never heard it.
  }
  // Restarts from checkpoint 2: its snapshot holds rows 5 .. 7 (staged, not yet published);
  // rows 0 .. 4 are not added twice.
  ASSERT_OK_AND_ASSIGN(auto restarted, bound.make_operator(ctx));
  ASSERT_OK(restarted->Restore(2, checkpoint2.reader()));
  ASSERT_OK_AND_ASSIGN(auto after_restore, options.collected->Table("out"));
  ASSERT_OK_AND_ASSIGN(auto expected, arrow::Table::FromRecordBatches(schema, {Batch(0, 8)}));
  EXPECT_TRUE(after_restore->CombineChunks().ValueOrDie()->Equals(*expected));
  EXPECT_EQ(restarted->rows_in(), 8);
  // Restoring again (a second failure before any new checkpoint) changes nothing.
  ASSERT_OK_AND_ASSIGN(auto again, bound.make_operator(ctx));
  ASSERT_OK(again->Restore(2, checkpoint2.reader()));
  ASSERT_OK_AND_ASSIGN(auto after_again, options.collected->Table("out"));
  EXPECT_EQ(after_again->num_rows(), 8);
  // The replay and the end of the job.
  ASSERT_OK(again->Process(0, Batch(8, 4), &none));
  checkpoint3.Clear();  // checkpoint 3 is taken again
  ASSERT_OK(again->Snapshot(3, checkpoint3.writer()));
  ASSERT_OK(again->Process(0, Batch(12, 1), &none));
  ASSERT_OK(again->Finish(&none));
  ASSERT_OK(again->Commit());
  ASSERT_OK_AND_ASSIGN(auto final_table, options.collected->Table("out"));
  ASSERT_OK_AND_ASSIGN(auto all, arrow::Table::FromRecordBatches(schema, {Batch(0, 13)}));
  EXPECT_TRUE(final_table->CombineChunks().ValueOrDie()->Equals(*all));
  EXPECT_EQ(again->rows_in(), 13);

  // A restart that goes back past a newer complete checkpoint (its files did not verify):
  // what was published for it goes; the replay brings it again.
  BindOptions fresh;
  fresh.collected = std::make_shared<CollectedOutput>();
  ASSERT_OK_AND_ASSIGN(auto bound2, BindOperator(spec, {schema}, fresh));
  testing::MemoryState first;
  {
    ASSERT_OK_AND_ASSIGN(auto sink, bound2.make_operator(ctx));
    ASSERT_OK(sink->Process(0, Batch(0, 5), &none));
    ASSERT_OK(sink->Snapshot(1, first.writer()));
    ASSERT_OK(sink->Process(0, Batch(5, 3), &none));
    testing::MemoryState second;
    ASSERT_OK(sink->Snapshot(2, second.writer()));
    ASSERT_OK(sink->CheckpointComplete(2));
    ASSERT_OK_AND_ASSIGN(auto published, fresh.collected->Table("out"));
    ASSERT_EQ(published->num_rows(), 8);
  }
  ASSERT_OK_AND_ASSIGN(auto back, bound2.make_operator(ctx));
  ASSERT_OK(back->Restore(1, first.reader()));
  EXPECT_EQ(back->rows_in(), 5);
  ASSERT_OK_AND_ASSIGN(auto rewound, fresh.collected->Table("out"));
  ASSERT_OK_AND_ASSIGN(auto first_five, arrow::Table::FromRecordBatches(schema, {Batch(0, 5)}));
  EXPECT_TRUE(rewound->CombineChunks().ValueOrDie()->Equals(*first_five));
}

TEST(CollectSinkTest, AFreshRestartDropsWhatTheFailedAttemptPublished) {
  // A restart of the run with no valid checkpoint to restore starts the tasks fresh (same bound
  // sink, same output): the rows the failed attempt published come again with the replay.
  auto schema = Batch(0, 0)->schema();
  OperatorSpec spec;
  spec.name = "out";
  spec.params = CollectSinkParams{};
  BindOptions options;
  options.collected = std::make_shared<CollectedOutput>();
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(spec, {schema}, options));
  TaskContext ctx;
  testing::NoOutput none;
  {
    ASSERT_OK_AND_ASSIGN(auto sink, bound.make_operator(ctx));
    ASSERT_OK(sink->Process(0, Batch(0, 5), &none));
    testing::MemoryState checkpoint1;
    ASSERT_OK(sink->Snapshot(1, checkpoint1.writer()));
    ASSERT_OK(sink->CheckpointComplete(1));
    ASSERT_EQ(options.collected->Batches("out", 0).size(), 1u);
    sink->Abort();
  }
  ASSERT_OK_AND_ASSIGN(auto fresh, bound.make_operator(ctx));
  ASSERT_OK(fresh->Process(0, Batch(0, 8), &none));
  ASSERT_OK(fresh->Finish(&none));
  ASSERT_OK(fresh->Commit());
  ASSERT_OK_AND_ASSIGN(auto out, options.collected->Table("out"));
  ASSERT_OK_AND_ASSIGN(auto expected, arrow::Table::FromRecordBatches(schema, {Batch(0, 8)}));
  EXPECT_TRUE(out->CombineChunks().ValueOrDie()->Equals(*expected)) << out->ToString();
}

}  // namespace
}  // namespace sabot
