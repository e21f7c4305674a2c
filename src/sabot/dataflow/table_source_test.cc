#include "sabot/dataflow/table_source.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

OperatorSpec SourceSpec(const TableSourceParams& params, int32_t parallelism) {
  OperatorSpec spec;
  spec.name = "tbl";
  spec.parallelism = parallelism;
  spec.params = params;
  return spec;
}

std::shared_ptr<arrow::ChunkedArray> Int64Chunks(const std::vector<std::vector<int64_t>>& chunks,
                                                 const std::shared_ptr<arrow::DataType>& type) {
  arrow::ArrayVector arrays;
  for (const auto& values : chunks) {
    std::unique_ptr<arrow::ArrayBuilder> builder;
    EXPECT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &builder));
    for (int64_t v : values) {
      if (type->id() == arrow::Type::INT64) {
        EXPECT_OK(static_cast<arrow::Int64Builder&>(*builder).Append(v));
      } else {
        EXPECT_OK(static_cast<arrow::TimestampBuilder&>(*builder).Append(v));
      }
    }
    arrays.push_back(builder->Finish().ValueOrDie());
  }
  return std::make_shared<arrow::ChunkedArray>(arrays, type);
}

// A table of `rows` rows whose two columns are chunked differently: `id` (row number) in
// chunks of 7, 0, 100, 3, rest; `ts` (ms, jittered down by up to 5) in chunks of 50 and rest.
std::shared_ptr<arrow::Table> MakeTable(int64_t rows) {
  std::vector<std::vector<int64_t>> id_chunks;
  int64_t row = 0;
  for (int64_t size : {int64_t{7}, int64_t{0}, int64_t{100}, int64_t{3}, rows}) {
    std::vector<int64_t> chunk;
    for (int64_t i = 0; i < size && row < rows; ++i) chunk.push_back(row++);
    id_chunks.push_back(std::move(chunk));
  }
  std::vector<std::vector<int64_t>> ts_chunks(2);
  for (int64_t r = 0; r < rows; ++r) ts_chunks[r < 50 ? 0 : 1].push_back(1000 + 10 * r - r % 6);
  auto ts_type = arrow::timestamp(arrow::TimeUnit::MILLI);
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("ts", ts_type)});
  return arrow::Table::Make(schema, {Int64Chunks(id_chunks, arrow::int64()),
                                     Int64Chunks(ts_chunks, ts_type)});
}

BindOptions WithTables(std::vector<std::pair<std::string, std::shared_ptr<arrow::Table>>> tables) {
  auto provided = std::make_shared<ProvidedTables>();
  for (auto& [name, table] : tables) EXPECT_OK(provided->Add(name, table));
  BindOptions options;
  options.tables = provided;
  return options;
}

struct TaskOutput {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  // (number of batches before it, watermark)
  std::vector<std::pair<size_t, WatermarkMs>> watermarks;
  int64_t rows = 0;
};

arrow::Result<TaskOutput> RunTask(const BoundOperator& bound, int32_t subtask,
                                  int32_t parallelism) {
  TaskContext ctx;
  ctx.subtask = subtask;
  ctx.parallelism = parallelism;
  ARROW_ASSIGN_OR_RAISE(auto reader, bound.make_source(ctx));
  TaskOutput out;
  for (;;) {
    ARROW_ASSIGN_OR_RAISE(auto step, reader->Next());
    if (step.kind == SourceReader::Step::Kind::kEnd) break;
    if (step.kind == SourceReader::Step::Kind::kBatch) {
      out.rows += step.batch->num_rows();
      out.batches.push_back(step.batch);
    } else if (step.kind == SourceReader::Step::Kind::kWatermark) {
      out.watermarks.emplace_back(out.batches.size(), step.watermark);
    } else {
      return arrow::Status::Invalid("a table source waited");
    }
  }
  if (reader->rows_out() != out.rows) return arrow::Status::Invalid("rows_out disagrees");
  return out;
}

// The addresses of every data buffer of `table`'s chunks.
std::set<const arrow::Buffer*> DataBuffers(const arrow::Table& table) {
  std::set<const arrow::Buffer*> out;
  for (const auto& column : table.columns()) {
    for (const auto& chunk : column->chunks()) {
      for (const auto& buffer : chunk->data()->buffers) {
        if (buffer != nullptr) out.insert(buffer.get());
      }
    }
  }
  return out;
}

TEST(TableSourceTest, TaskRowsSplitEvenlyAndCoverEveryRowOnce) {
  for (int64_t rows : {int64_t{0}, int64_t{1}, int64_t{10}, int64_t{1000003},
                       int64_t{1} << 62}) {
    for (int32_t p : {1, 2, 3, 7, 1024}) {
      int64_t next = 0;
      for (int32_t k = 0; k < p; ++k) {
        TableRowRange range = TableSourceTaskRows(rows, k, p);
        ASSERT_EQ(range.begin, next) << rows << " rows, task " << k << " of " << p;
        ASSERT_LE(range.begin, range.end);
        const int64_t share = range.end - range.begin;
        ASSERT_TRUE(share == rows / p || share == rows / p + 1) << share;
        next = range.end;
      }
      ASSERT_EQ(next, rows);
    }
  }
}

TEST(TableSourceTest, TasksReadEveryRowOnceInOrderWithoutCopying) {
  constexpr int64_t kRows = 1000;
  auto table = MakeTable(kRows);
  const std::set<const arrow::Buffer*> buffers = DataBuffers(*table);
  for (int64_t batch_rows : {int64_t{1}, int64_t{16}, int64_t{64 * 1024}}) {
    for (int32_t p : {1, 2, 3, 7, 1500}) {
      SCOPED_TRACE("batch_rows " + std::to_string(batch_rows) + ", " + std::to_string(p) +
                   " tasks");
      TableSourceParams params{"t", batch_rows, {}};
      ASSERT_OK_AND_ASSIGN(auto bound,
                           BindOperator(SourceSpec(params, p), {}, WithTables({{"t", table}})));
      ASSERT_TRUE(bound.output_schema->Equals(*table->schema()));
      std::vector<std::shared_ptr<arrow::RecordBatch>> all;
      for (int32_t k = 0; k < p; ++k) {
        ASSERT_OK_AND_ASSIGN(TaskOutput out, RunTask(bound, k, p));
        TableRowRange range = TableSourceTaskRows(kRows, k, p);
        ASSERT_EQ(out.rows, range.end - range.begin);
        ASSERT_TRUE(out.watermarks.empty());
        for (const auto& batch : out.batches) {
          ASSERT_GT(batch->num_rows(), 0);
          ASSERT_LE(batch->num_rows(), batch_rows);
          // Every buffer of the batch is one of the table's: a slice, not a copy.
          for (const auto& column : batch->columns()) {
            for (const auto& buffer : column->data()->buffers) {
              if (buffer != nullptr) {
                ASSERT_TRUE(buffers.count(buffer.get()));
              }
            }
          }
          all.push_back(batch);
        }
      }
      // In task order the batches are the table itself.
      ASSERT_OK_AND_ASSIGN(auto read, arrow::Table::FromRecordBatches(table->schema(), all));
      ASSERT_TRUE(read->Equals(*table));
    }
  }
}

TEST(TableSourceTest, BatchesNeverCrossAChunkBoundary) {
  auto table = MakeTable(300);
  // Chunk boundaries of `id`: 7, 107, 110; of `ts`: 50.
  const std::set<int64_t> boundaries = {7, 50, 107, 110};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(TableSourceParams{"t", 1000, {}}, 2),
                                                {}, WithTables({{"t", table}})));
  int64_t row = 0;
  std::vector<int64_t> starts;
  for (int32_t k = 0; k < 2; ++k) {
    ASSERT_OK_AND_ASSIGN(TaskOutput out, RunTask(bound, k, 2));
    for (const auto& batch : out.batches) {
      starts.push_back(row);
      for (int64_t b : boundaries) {
        ASSERT_FALSE(row < b && b < row + batch->num_rows())
            << "batch of rows [" << row << ", " << row + batch->num_rows() << ") crosses " << b;
      }
      row += batch->num_rows();
    }
  }
  // Cut at the chunk boundaries and at task 1's first row (150), and nowhere else.
  EXPECT_EQ(starts, (std::vector<int64_t>{0, 7, 50, 107, 110, 150}));
}

TEST(TableSourceTest, WatermarksFollowTheLargestEventTimeMinusTheLateness) {
  constexpr int64_t kRows = 500;
  constexpr int64_t kLateness = 20;
  auto table = MakeTable(kRows);
  TableSourceParams params{"t", 32, EventTimeSpec{"ts", std::chrono::milliseconds(kLateness)}};
  constexpr int32_t kTasks = 3;
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, kTasks), {},
                                                WithTables({{"t", table}})));
  for (int32_t k = 0; k < kTasks; ++k) {
    ASSERT_OK_AND_ASSIGN(TaskOutput out, RunTask(bound, k, kTasks));
    // Independently: the watermark after batch i is the running maximum of ts minus the
    // lateness, emitted when it goes up.
    std::vector<std::pair<size_t, WatermarkMs>> expected;
    int64_t max_seen = INT64_MIN;
    for (size_t i = 0; i < out.batches.size(); ++i) {
      const auto& ts = static_cast<const arrow::TimestampArray&>(*out.batches[i]->column(1));
      for (int64_t r = 0; r < ts.length(); ++r) max_seen = std::max(max_seen, ts.Value(r));
      const WatermarkMs watermark = max_seen - kLateness;
      if (expected.empty() || expected.back().second < watermark) {
        expected.emplace_back(i + 1, watermark);
      }
    }
    EXPECT_EQ(out.watermarks, expected) << "task " << k;
    ASSERT_FALSE(out.watermarks.empty());
  }
}

TEST(TableSourceTest, RewindsToASnapshotWithItsWatermark) {
  // Checkpoints: for every task and every cut, a restored NEW reader yields exactly the rest
  // (state_testing.h), pending watermark first.
  auto table = MakeTable(500);
  TableSourceParams params{"t", 32, EventTimeSpec{"ts", std::chrono::milliseconds(20)}};
  constexpr int32_t kTasks = 3;
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, kTasks), {},
                                                WithTables({{"t", table}})));
  for (int32_t k = 0; k < kTasks; ++k) {
    ASSERT_OK_AND_ASSIGN(TaskOutput all, RunTask(bound, k, kTasks));
    auto make = [&bound, k]() {
      TaskContext ctx;
      ctx.subtask = k;
      ctx.parallelism = kTasks;
      return bound.make_source(ctx);
    };
    const auto batches = static_cast<int64_t>(all.batches.size());
    for (int64_t before = 0; before <= batches; ++before) {
      SCOPED_TRACE("task " + std::to_string(k) + " after " + std::to_string(before));
      ASSERT_OK_AND_ASSIGN(auto rest, testing::CheckSourceRewinds(make, before, batches + 1));
      EXPECT_TRUE(rest.ended);
      EXPECT_EQ(rest.batches(), batches - before);
      if (before > 0 && before < batches) {
        // Every batch of this table advances the watermark: it is the first step after a cut.
        EXPECT_EQ(rest.steps.front().kind, SourceReader::Step::Kind::kWatermark);
      }
    }
  }
  // Another task's snapshot, or another table, is refused.
  TaskContext ctx;
  ctx.parallelism = kTasks;
  ASSERT_OK_AND_ASSIGN(auto first, bound.make_source(ctx));
  testing::MemoryState state;
  ASSERT_OK(first->Snapshot(2, state.writer()));
  ctx.subtask = 1;
  ASSERT_OK_AND_ASSIGN(auto other, bound.make_source(ctx));
  ASSERT_RAISES_WITH(Invalid, "table source task 1 restoring checkpoint 2: the snapshot is of task 0",
                     other->Restore(2, state.reader()));
}

TEST(TableSourceTest, EmptyTableEndsAtOnceWithItsSchema) {
  auto table = MakeTable(0);
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(TableSourceParams{"t", 8, {}}, 3), {},
                                                WithTables({{"t", table}})));
  ASSERT_TRUE(bound.output_schema->Equals(*table->schema()));
  for (int32_t k = 0; k < 3; ++k) {
    ASSERT_OK_AND_ASSIGN(TaskOutput out, RunTask(bound, k, 3));
    EXPECT_EQ(out.rows, 0);
    EXPECT_TRUE(out.batches.empty());
  }
}

TEST(TableSourceTest, AbortEndsTheTask) {
  auto table = MakeTable(100);
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(TableSourceParams{"t", 10, {}}, 1), {},
                                                WithTables({{"t", table}})));
  TaskContext ctx;
  ASSERT_OK_AND_ASSIGN(auto reader, bound.make_source(ctx));
  ASSERT_OK_AND_ASSIGN(auto step, reader->Next());
  ASSERT_EQ(step.kind, SourceReader::Step::Kind::kBatch);
  EXPECT_EQ(step.batch->num_rows(), 7);  // the first chunk of `id`
  reader->Abort();
  ASSERT_OK_AND_ASSIGN(step, reader->Next());
  EXPECT_EQ(step.kind, SourceReader::Step::Kind::kEnd);
  EXPECT_EQ(reader->rows_out(), 7);
}

TEST(TableSourceTest, BindingErrorsNameTheOperatorAndTheTable) {
  auto table = MakeTable(10);
  OperatorSpec spec = SourceSpec(TableSourceParams{"orders", 8, {}}, 2);
  ASSERT_RAISES_WITH(Invalid,
                     "operator 'tbl' (table_source): reads the in-memory table 'orders', but the "
                     "program running the job provided no tables",
                     BindOperator(spec, {}, BindOptions{}).status());
  ASSERT_RAISES_WITH(KeyError,
                     "operator 'tbl' (table_source): no table named 'orders' was provided "
                     "(provided: 'a', 'b')",
                     BindOperator(spec, {}, WithTables({{"b", table}, {"a", table}})).status());
  ASSERT_RAISES_WITH(KeyError, "(provided: none)",
                     BindOperator(spec, {}, WithTables({})).status());
  OperatorSpec timed = SourceSpec(
      TableSourceParams{"t", 8, EventTimeSpec{"event_time", std::chrono::milliseconds(0)}}, 1);
  ASSERT_RAISES_WITH(KeyError, "operator 'tbl' (table_source): ",
                     BindOperator(timed, {}, WithTables({{"t", table}})).status());
  timed = SourceSpec(TableSourceParams{"t", 8, EventTimeSpec{"id", {}}}, 1);
  EXPECT_OK(BindOperator(timed, {}, WithTables({{"t", table}})).status());  // integer ms
  auto strings = arrow::Table::Make(arrow::schema({arrow::field("s", arrow::utf8())}),
                                    {std::make_shared<arrow::ChunkedArray>(
                                        arrow::ArrayVector{}, arrow::utf8())});
  timed = SourceSpec(TableSourceParams{"t", 8, EventTimeSpec{"s", {}}}, 1);
  ASSERT_RAISES_WITH(TypeError, "operator 'tbl' (table_source): ",
                     BindOperator(timed, {}, WithTables({{"t", strings}})).status());
  // A table whose columns disagree on their length is refused before any task runs.
  auto ragged = arrow::Table::Make(
      arrow::schema({arrow::field("a", arrow::int64()), arrow::field("b", arrow::int64())}),
      {Int64Chunks({{1, 2, 3}}, arrow::int64()), Int64Chunks({{1, 2}}, arrow::int64())}, 3);
  ASSERT_RAISES_WITH(Invalid, "operator 'tbl' (table_source): table 'orders': ",
                     BindOperator(spec, {}, WithTables({{"orders", ragged}})).status());

  ProvidedTables provided;
  ASSERT_RAISES_WITH(Invalid, "needs a name", provided.Add("", table));
  ASSERT_RAISES_WITH(Invalid, "the table provided as 'x' is null", provided.Add("x", nullptr));
  ASSERT_OK(provided.Add("x", table));
  ASSERT_OK(provided.Add("x", ragged));  // replaced
  ASSERT_OK_AND_ASSIGN(auto got, provided.Get("x"));
  EXPECT_EQ(got, ragged);
  EXPECT_EQ(provided.names(), std::vector<std::string>{"x"});
}

// A job: the table through a 3 x 2 HASH shuffle on `key` into collect sinks, in both shuffle
// modes; every row arrives once, each key at one task.
TEST(TableSourceTest, RunsInAJobThroughAShuffle) {
  constexpr int64_t kRows = 20000;
  arrow::Int64Builder keys;
  arrow::Int64Builder values;
  for (int64_t r = 0; r < kRows; ++r) {
    ASSERT_OK(keys.Append((r * 7919) % 101));
    ASSERT_OK(values.Append(r));
  }
  auto schema =
      arrow::schema({arrow::field("key", arrow::int64()), arrow::field("value", arrow::int64())});
  auto table = arrow::Table::Make(schema, {keys.Finish().ValueOrDie(), values.Finish().ValueOrDie()});
  for (ShuffleMode mode : {ShuffleMode::kPipelined, ShuffleMode::kBlocking}) {
    PlanBuilder b;
    b.SetOptions(PlanOptions{.shuffle_mode = mode, .chaining = true});
    b.Source(TableSourceParams{"input", 1000, {}}, 3, "src")
        .KeyBy({"key"})
        .Map("double", "value * 2", 2, "m")
        .Sink(CollectSinkParams{}, {}, "out");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    LocalExecutorOptions options;
    options.threads = 2;
    options.collected = std::make_shared<CollectedOutput>();
    auto provided = std::make_shared<ProvidedTables>();
    ASSERT_OK(provided->Add("input", table));
    options.tables = provided;
    ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
    ASSERT_OK_AND_ASSIGN(auto out, options.collected->Table("out"));
    ASSERT_EQ(out->num_rows(), kRows);
    // Every value once.
    ASSERT_OK_AND_ASSIGN(auto sorted_indices,
                         arrow::compute::SortIndices(arrow::Datum(out),
                                                     arrow::compute::SortOptions(
                                                         {arrow::compute::SortKey("value")})));
    ASSERT_OK_AND_ASSIGN(auto sorted, arrow::compute::Take(out, sorted_indices));
    auto value = sorted.table()->GetColumnByName("value");
    auto twice = sorted.table()->GetColumnByName("double");
    int64_t r = 0;
    for (const auto& chunk : value->chunks()) {
      const auto& v = static_cast<const arrow::Int64Array&>(*chunk);
      for (int64_t i = 0; i < v.length(); ++i, ++r) ASSERT_EQ(v.Value(i), r);
    }
    ASSERT_OK_AND_ASSIGN(auto expected_twice,
                         arrow::compute::Multiply(value, arrow::Datum(int64_t{2})));
    ASSERT_TRUE(expected_twice.chunked_array()->Equals(*twice));
    // Each key at one sink task.
    std::map<int64_t, int32_t> task_of_key;
    for (int32_t k = 0; k < 2; ++k) {
      for (const auto& batch : options.collected->Batches("out", k)) {
        const auto& key = static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("key"));
        for (int64_t i = 0; i < key.length(); ++i) {
          auto [it, inserted] = task_of_key.try_emplace(key.Value(i), k);
          ASSERT_EQ(it->second, k) << "key " << key.Value(i) << " at two tasks";
        }
      }
    }
    EXPECT_EQ(task_of_key.size(), 101u);
    EXPECT_EQ(report.operators.front().rows_out, kRows);
  }
}

// A table source's event time reaches the windows downstream (BindJob finds the window's
// event-time column at the sources upstream): the seed pipeline's shape over a provided table,
// against sums computed here.
TEST(TableSourceTest, FeedsAnEventTimeWindow) {
  constexpr int64_t kRows = 5000;
  constexpr int64_t kWindowMs = 10000;
  arrow::Int64Builder users;
  arrow::DoubleBuilder amounts;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MILLI),
                                arrow::default_memory_pool());
  std::map<std::tuple<int64_t, int64_t>, double> expected;  // (user, window start) -> sum
  for (int64_t r = 0; r < kRows; ++r) {
    const int64_t user = (r * 31) % 7;
    const int64_t ts = 1704067200000 + r * 100 - (r * 17) % 500;  // out of order by < 500 ms
    ASSERT_OK(users.Append(user));
    ASSERT_OK(amounts.Append(static_cast<double>(r % 100)));
    ASSERT_OK(times.Append(ts));
    expected[{user, ts - ts % kWindowMs}] += static_cast<double>(r % 100);
  }
  auto schema = arrow::schema({arrow::field("user_id", arrow::int64()),
                               arrow::field("amount", arrow::float64()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI))});
  auto table = arrow::Table::Make(schema, {users.Finish().ValueOrDie(),
                                           amounts.Finish().ValueOrDie(),
                                           times.Finish().ValueOrDie()});
  PlanBuilder b;
  b.Source(TableSourceParams{"tx", 512, EventTimeSpec{"ts", std::chrono::milliseconds(500)}}, 3,
           "src")
      .KeyBy({"user_id"})
      .Window(Tumbling(std::chrono::milliseconds(kWindowMs)), {}, "window")
      .Aggregate({Sum("amount")}, 2, "agg")
      .Sink(CollectSinkParams{}, {}, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = std::make_shared<CollectedOutput>();
  auto provided = std::make_shared<ProvidedTables>();
  ASSERT_OK(provided->Add("tx", table));
  options.tables = provided;
  ASSERT_OK(RunLocalJob(plan, options).status());
  ASSERT_OK_AND_ASSIGN(auto out, options.collected->Table("out"));
  ASSERT_OK_AND_ASSIGN(out, out->CombineChunks());
  ASSERT_EQ(out->num_rows(), static_cast<int64_t>(expected.size()));
  const auto& user = static_cast<const arrow::Int64Array&>(
      *out->GetColumnByName("user_id")->chunk(0));
  const auto& start = static_cast<const arrow::TimestampArray&>(
      *out->GetColumnByName("window_start")->chunk(0));
  const auto& sum = static_cast<const arrow::DoubleArray&>(
      *out->GetColumnByName("sum_amount")->chunk(0));
  for (int64_t i = 0; i < out->num_rows(); ++i) {
    auto it = expected.find({user.Value(i), start.Value(i)});
    ASSERT_NE(it, expected.end()) << "user " << user.Value(i) << " window " << start.Value(i);
    EXPECT_EQ(sum.Value(i), it->second);
    expected.erase(it);
  }
  EXPECT_TRUE(expected.empty());
}

}  // namespace
}  // namespace sabot
