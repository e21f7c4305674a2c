#include "sabot/dataflow/verify_sink.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "sabot/dataflow/generator_source.h"
#include "sabot/dataflow/operator_testing.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/partition/partitioner.h"
#include "sabot/testing/assertions.h"
#include "sabot/verify/generated_shuffle_check.h"

namespace sabot {
namespace {

// The verify sink under checkpoints: tasks snapshot their partition's progress after writer
// 0's first batch; restarted (new) tasks restore it and the rows after the checkpoint are
// replayed: the job's final check passes, and a row delivered again is caught.
TEST(VerifySinkTest, ARestoredTaskChecksTheReplayedRowsExactly) {
  GeneratorSourceParams generator;
  generator.batch_rows = 40;
  generator.rows = 2 * 2 * 40;  // 2 writers x 2 batches
  generator.key_cardinality = 25;
  GeneratedJob job;
  job.data = ShuffleTableOptions(generator);
  job.num_writers = 2;
  job.batches_per_writer = 2;
  ASSERT_OK_AND_ASSIGN(auto edge_spec, job.MakeSpec(EdgeType::kHash, 3));
  OperatorSpec spec;
  spec.name = "verify";
  spec.parallelism = 3;
  spec.params = VerifySinkParams{};
  ASSERT_OK_AND_ASSIGN(auto bound, BindVerifySink(spec, generator, 2, edge_spec));
  auto make_tasks = [&]() {
    std::vector<std::unique_ptr<Operator>> tasks;
    for (int32_t p = 0; p < 3; ++p) {
      TaskContext ctx;
      ctx.subtask = p;
      ctx.parallelism = 3;
      tasks.push_back(bound.make_operator(ctx).ValueOrDie());
    }
    return tasks;
  };
  testing::NoOutput none;
  auto feed = [&](std::vector<std::unique_ptr<Operator>>& tasks, int32_t writer,
                  int64_t index) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto partitioner,
                          MakePartitioner(*edge_spec, GeneratedSchema(job.data), writer));
    ARROW_ASSIGN_OR_RAISE(auto batch, job.WriterBatch(writer, index));
    ARROW_ASSIGN_OR_RAISE(auto parts, partitioner->Partition(batch));
    for (int32_t p = 0; p < parts.num_partitions(); ++p) {
      if (parts.batches[p]) ARROW_RETURN_NOT_OK(tasks[p]->Process(0, parts.batches[p], &none));
    }
    return arrow::Status::OK();
  };
  std::vector<testing::MemoryState> checkpoint(3);
  int64_t rows_at_checkpoint = 0;
  {
    auto tasks = make_tasks();
    ASSERT_OK(feed(tasks, 0, 0));
    for (int32_t p = 0; p < 3; ++p) {
      ASSERT_OK(tasks[p]->Snapshot(1, checkpoint[p].writer()));
      rows_at_checkpoint += tasks[p]->rows_in();
    }
    ASSERT_EQ(rows_at_checkpoint, 40);
    ASSERT_OK(feed(tasks, 1, 0));  // after the checkpoint: lost in the crash
  }
  auto tasks = make_tasks();
  for (int32_t p = 0; p < 3; ++p) ASSERT_OK(tasks[p]->Restore(1, checkpoint[p].reader()));
  ASSERT_OK(feed(tasks, 1, 0));
  ASSERT_OK(feed(tasks, 0, 1));
  ASSERT_OK(feed(tasks, 1, 1));
  int64_t rows = 0;
  for (auto& task : tasks) {
    ASSERT_OK(task->Finish(&none));
    rows += task->rows_in();
  }
  EXPECT_EQ(rows, 160);
  for (auto& task : tasks) ASSERT_OK(task->Commit());

  // A batch before the checkpoint delivered again after the restore is a duplicate.
  auto again = make_tasks();
  for (int32_t p = 0; p < 3; ++p) ASSERT_OK(again[p]->Restore(1, checkpoint[p].reader()));
  ASSERT_RAISES_WITH(Invalid, "order", feed(again, 0, 0));
  // Another task's snapshot is refused.
  ASSERT_RAISES_WITH(Invalid, "verify sink task 1 restoring checkpoint 1: the snapshot is of task 0",
                     again[1]->Restore(1, checkpoint[0].reader()));
}

// A failure before any checkpoint completed restarts the tasks fresh (no Restore), in the same
// run (same bound sink and check): the replay from the first row is checked as first arrivals.
TEST(VerifySinkTest, AFreshRestartChecksTheReplayFromTheStart) {
  GeneratorSourceParams generator;
  generator.batch_rows = 40;
  generator.rows = 2 * 40;  // 2 writers x 1 batch
  generator.key_cardinality = 25;
  GeneratedJob job;
  job.data = ShuffleTableOptions(generator);
  job.num_writers = 2;
  job.batches_per_writer = 1;
  ASSERT_OK_AND_ASSIGN(auto edge_spec, job.MakeSpec(EdgeType::kHash, 2));
  OperatorSpec spec;
  spec.name = "verify";
  spec.parallelism = 2;
  spec.params = VerifySinkParams{};
  ASSERT_OK_AND_ASSIGN(auto bound, BindVerifySink(spec, generator, 2, edge_spec));
  testing::NoOutput none;
  auto run = [&](bool finish) -> arrow::Status {
    std::vector<std::unique_ptr<Operator>> tasks;
    for (int32_t p = 0; p < 2; ++p) {
      TaskContext ctx;
      ctx.subtask = p;
      ctx.parallelism = 2;
      ARROW_ASSIGN_OR_RAISE(auto task, bound.make_operator(ctx));
      tasks.push_back(std::move(task));
    }
    for (int32_t writer = 0; writer < 2; ++writer) {
      if (!finish && writer == 1) break;  // the crash
      ARROW_ASSIGN_OR_RAISE(auto partitioner,
                            MakePartitioner(*edge_spec, GeneratedSchema(job.data), writer));
      ARROW_ASSIGN_OR_RAISE(auto batch, job.WriterBatch(writer, 0));
      ARROW_ASSIGN_OR_RAISE(auto parts, partitioner->Partition(batch));
      for (int32_t p = 0; p < parts.num_partitions(); ++p) {
        if (parts.batches[p]) ARROW_RETURN_NOT_OK(tasks[p]->Process(0, parts.batches[p], &none));
      }
    }
    if (!finish) {
      for (auto& task : tasks) task->Abort();
      return arrow::Status::OK();
    }
    for (auto& task : tasks) ARROW_RETURN_NOT_OK(task->Finish(&none));
    for (auto& task : tasks) ARROW_RETURN_NOT_OK(task->Commit());
    return arrow::Status::OK();
  };
  ASSERT_OK(run(/*finish=*/false));
  ASSERT_OK(run(/*finish=*/true));
}

}  // namespace
}  // namespace sabot
