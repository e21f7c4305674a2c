#include "sabot/dataflow/generator_source.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include <arrow/array.h>
#include <arrow/type.h>

#include "sabot/common/data_generator.h"
#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

OperatorSpec SourceSpec(const GeneratorSourceParams& params, int32_t parallelism) {
  OperatorSpec spec;
  spec.name = "gen";
  spec.parallelism = parallelism;
  spec.params = params;
  return spec;
}

struct TaskOutput {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  // (index of the next batch when it came, watermark)
  std::vector<std::pair<size_t, WatermarkMs>> watermarks;
  int64_t rows = 0;
};

// Runs task `subtask` of `parallelism` to its end (the test sources have no rate).
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
      return arrow::Status::Invalid("unexpected wait from a source without a rate");
    }
  }
  if (reader->rows_out() != out.rows) return arrow::Status::Invalid("rows_out disagrees");
  return out;
}

TEST(GeneratorSourceTest, ShuffleTableIsTheDataGeneratorsTablePerWriter) {
  // `sabot shuffle` with W writers of n batches: writer w writes batches w*n .. (w+1)*n - 1.
  constexpr int32_t kWriters = 4;
  constexpr int64_t kBatchesPerWriter = 3;
  GeneratorSourceParams params;
  params.batch_rows = 1000;
  params.rows = kWriters * kBatchesPerWriter * params.batch_rows;
  params.key_cardinality = 77;
  params.string_key = true;
  params.payload_columns = 2;
  params.seed = 9;
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, kWriters), {}, {}));
  DataGeneratorOptions expected_options;
  expected_options.batch_rows = 1000;
  expected_options.key_cardinality = 77;
  expected_options.string_key = true;
  expected_options.payload_columns = 2;
  expected_options.seed = 9;
  ASSERT_TRUE(bound.output_schema->Equals(*GeneratedSchema(expected_options)));
  for (int32_t w = 0; w < kWriters; ++w) {
    ASSERT_OK_AND_ASSIGN(auto out, RunTask(bound, w, kWriters));
    ASSERT_EQ(out.batches.size(), static_cast<size_t>(kBatchesPerWriter));
    for (int64_t i = 0; i < kBatchesPerWriter; ++i) {
      ASSERT_OK_AND_ASSIGN(auto expected,
                           GenerateBatch(expected_options, w * kBatchesPerWriter + i));
      ASSERT_BATCHES_EQUAL(*expected, *out.batches[i]);
    }
  }
}

TEST(GeneratorSourceTest, TotalsAreExactAtAnySplit) {
  for (GeneratorTable table : {GeneratorTable::kShuffle, GeneratorTable::kTransactions}) {
    for (int64_t rows : {1, 100, 1000, 4097}) {
      for (int32_t parallelism : {1, 2, 3, 7, 16}) {
        GeneratorSourceParams params;
        params.table = table;
        params.rows = rows;
        params.batch_rows = 64;
        ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, parallelism), {}, {}));
        // Each global row exactly once: the shuffle table's p0 is row * 16, the transactions'
        // event time is epoch + row - jitter, so compare against the whole table generated at
        // once (batch by batch, as the generator defines it).
        std::vector<std::shared_ptr<arrow::RecordBatch>> got;
        int64_t total = 0;
        for (int32_t k = 0; k < parallelism; ++k) {
          ASSERT_OK_AND_ASSIGN(auto out, RunTask(bound, k, parallelism));
          total += out.rows;
          got.insert(got.end(), out.batches.begin(), out.batches.end());
        }
        ASSERT_EQ(total, rows) << "rows " << rows << " parallelism " << parallelism;
        // Tasks take contiguous batch ranges in task order, so the concatenation is the table.
        int64_t row = 0;
        for (const auto& batch : got) {
          const int64_t n = std::min(params.batch_rows, rows - row);
          ASSERT_OK_AND_ASSIGN(auto expected, GenerateTableRows(params, row, n));
          ASSERT_BATCHES_EQUAL(*expected, *batch);
          row += n;
        }
        ASSERT_EQ(row, rows);
      }
    }
  }
}

TEST(GeneratorSourceTest, TransactionsAreDeterministicAndOutOfOrderWithinTheBound) {
  GeneratorSourceParams params;
  params.table = GeneratorTable::kTransactions;
  params.rows = 20000;
  params.batch_rows = 1000;
  params.key_cardinality = 50;
  params.seed = 3;
  ASSERT_OK_AND_ASSIGN(auto a, GenerateTableRows(params, 0, params.rows));
  ASSERT_OK_AND_ASSIGN(auto b, GenerateTableRows(params, 0, params.rows));
  ASSERT_BATCHES_EQUAL(*a, *b);
  params.seed = 4;
  ASSERT_OK_AND_ASSIGN(auto c, GenerateTableRows(params, 0, params.rows));
  ASSERT_FALSE(a->Equals(*c));

  ASSERT_EQ(a->schema()->ToString(),
            "user_id: int64 not null\namount: double not null\nevent_time: timestamp[ms] not null");
  const auto& users = static_cast<const arrow::Int64Array&>(*a->column(0));
  const auto& amounts = static_cast<const arrow::DoubleArray&>(*a->column(1));
  const auto& times = static_cast<const arrow::TimestampArray&>(*a->column(2));
  int64_t max_seen = kTransactionsEpochMs;  // below every event time plus the bound
  int64_t out_of_order = 0;
  for (int64_t r = 0; r < a->num_rows(); ++r) {
    ASSERT_GE(users.Value(r), 0);
    ASSERT_LT(users.Value(r), 50);
    ASSERT_GE(amounts.Value(r), 0);
    ASSERT_LT(amounts.Value(r), 10000);
    const int64_t t = times.Value(r);
    ASSERT_LE(t, kTransactionsEpochMs + r);
    ASSERT_GE(t, kTransactionsEpochMs + r - kTransactionsMaxDisorderMs);
    if (t < max_seen) ++out_of_order;
    ASSERT_GE(t, max_seen - kTransactionsMaxDisorderMs) << "row " << r;
    max_seen = std::max(max_seen, t);
  }
  EXPECT_GT(out_of_order, a->num_rows() / 4);  // disorder is the rule, not the exception
}

TEST(GeneratorSourceTest, WatermarksAreMonotoneAndNeverPassALaterRow) {
  for (int32_t parallelism : {1, 3}) {
    GeneratorSourceParams params;
    params.table = GeneratorTable::kTransactions;
    params.rows = 30000;
    params.batch_rows = 500;
    params.event_time = EventTimeSpec{"event_time",
                                      std::chrono::milliseconds(kTransactionsMaxDisorderMs)};
    ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, parallelism), {}, {}));
    for (int32_t k = 0; k < parallelism; ++k) {
      ASSERT_OK_AND_ASSIGN(auto out, RunTask(bound, k, parallelism));
      ASSERT_FALSE(out.watermarks.empty());
      // Event times of all rows, with the batch index each belongs to.
      WatermarkMs previous = kNoWatermark;
      int64_t max_seen = INT64_MIN;
      size_t next_watermark = 0;
      for (size_t i = 0; i <= out.batches.size(); ++i) {
        while (next_watermark < out.watermarks.size() &&
               out.watermarks[next_watermark].first == i) {
          const WatermarkMs w = out.watermarks[next_watermark].second;
          ASSERT_GT(w, previous);
          ASSERT_EQ(w, max_seen - kTransactionsMaxDisorderMs);
          previous = w;
          ++next_watermark;
        }
        if (i == out.batches.size()) break;
        const auto& times = static_cast<const arrow::TimestampArray&>(*out.batches[i]->column(2));
        for (int64_t r = 0; r < times.length(); ++r) {
          ASSERT_GE(times.Value(r), previous) << "a row behind the watermark";
          max_seen = std::max(max_seen, times.Value(r));
        }
      }
      ASSERT_EQ(next_watermark, out.watermarks.size());
    }
  }
}

TEST(GeneratorSourceTest, RateLimitWaits) {
  GeneratorSourceParams params;
  params.rows = 100;
  params.batch_rows = 10;
  params.rows_per_second = 1;  // over 2 tasks: one row every 2 s per task
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, 2), {}, {}));
  TaskContext ctx;
  ctx.parallelism = 2;
  ASSERT_OK_AND_ASSIGN(auto reader, bound.make_source(ctx));
  const auto before = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto first, reader->Next());
  ASSERT_EQ(first.kind, SourceReader::Step::Kind::kBatch);
  ASSERT_EQ(first.batch->num_rows(), 1);  // a tenth of a second of rows, at least one
  ASSERT_OK_AND_ASSIGN(auto second, reader->Next());
  ASSERT_EQ(second.kind, SourceReader::Step::Kind::kWait);
  ASSERT_GE(second.ready_at - before, std::chrono::milliseconds(1900));
}

TEST(GeneratorSourceTest, UnboundedTasksInterleaveBatches) {
  GeneratorSourceParams params;
  params.rows = 0;
  params.batch_rows = 8;
  params.rows_per_second = 1e9;
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, 3), {}, {}));
  TaskContext ctx;
  ctx.subtask = 1;
  ctx.parallelism = 3;
  ASSERT_OK_AND_ASSIGN(auto reader, bound.make_source(ctx));
  std::vector<int64_t> first_rows;
  while (first_rows.size() < 3) {
    ASSERT_OK_AND_ASSIGN(auto step, reader->Next());
    ASSERT_NE(step.kind, SourceReader::Step::Kind::kEnd);
    if (step.kind != SourceReader::Step::Kind::kBatch) continue;
    const auto& p0 = static_cast<const arrow::Int64Array&>(*step.batch->column(1));
    first_rows.push_back(p0.Value(0) / 16);
  }
  EXPECT_EQ(first_rows, (std::vector<int64_t>{8, 32, 56}));  // batches 1, 4, 7
}

TEST(GeneratorSourceTest, BindErrorsNameTheOperator) {
  GeneratorSourceParams params;
  params.event_time = EventTimeSpec{"nope", std::chrono::milliseconds(5)};
  ASSERT_RAISES_WITH(KeyError, "operator 'gen' (generator_source): event-time column 'nope'",
                     BindOperator(SourceSpec(params, 1), {}, {}));
  params.string_key = true;
  params.event_time = EventTimeSpec{"key_string", std::chrono::milliseconds(5)};
  ASSERT_RAISES_WITH(TypeError, "operator 'gen' (generator_source): event-time column",
                     BindOperator(SourceSpec(params, 1), {}, {}));
  params.event_time.reset();
  params.rows = 0;
  ASSERT_RAISES_WITH(Invalid, "needs a rate", BindOperator(SourceSpec(params, 1), {}, {}));
  // An integer event-time column (milliseconds) is accepted.
  params.rows = 10;
  params.event_time = EventTimeSpec{"key", std::chrono::milliseconds(0)};
  ASSERT_OK(BindOperator(SourceSpec(params, 1), {}, {}));
}

// Checkpoints: a restored NEW reader yields exactly the rest (state_testing.h).
std::function<arrow::Result<std::unique_ptr<SourceReader>>()> Maker(const BoundOperator& bound,
                                                                   int32_t subtask,
                                                                   int32_t parallelism) {
  return [&bound, subtask, parallelism]() {
    TaskContext ctx;
    ctx.subtask = subtask;
    ctx.parallelism = parallelism;
    return bound.make_source(ctx);
  };
}

TEST(GeneratorSourceTest, ShuffleTableRewindsToASnapshot) {
  GeneratorSourceParams params;
  params.rows = 5000;
  params.batch_rows = 300;  // the last batch is short
  params.payload_columns = 2;
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, 3), {}, {}));
  for (int32_t k = 0; k < 3; ++k) {
    for (int64_t before : {0, 1, 3}) {
      ASSERT_OK_AND_ASSIGN(auto rest,
                           testing::CheckSourceRewinds(Maker(bound, k, 3), before, 1000));
      EXPECT_TRUE(rest.ended);
    }
  }
  // At the end: the restored reader ends at once.
  ASSERT_OK_AND_ASSIGN(auto rest, testing::CheckSourceRewinds(Maker(bound, 2, 3), 6, 1000));
  EXPECT_TRUE(rest.ended);
  EXPECT_EQ(rest.batches(), 0);
}

TEST(GeneratorSourceTest, RateLimitedTransactionsRewindWithinABatchAndKeepWatermarks) {
  GeneratorSourceParams params;
  params.table = GeneratorTable::kTransactions;
  params.rows = 3000;
  params.batch_rows = 1000;
  params.rows_per_second = 4000;  // one task: slices of 400 rows, a snapshot inside a batch
  params.event_time = EventTimeSpec{"event_time", std::chrono::milliseconds(100)};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, 1), {}, {}));
  // After 2 slices (800 rows of batch 0) the second slice's watermark is pending: the
  // restored reader gives it first, then the rest of batch 0 from row 800.
  ASSERT_OK_AND_ASSIGN(auto rest, testing::CheckSourceRewinds(Maker(bound, 0, 1), 2, 3));
  ASSERT_GE(rest.steps.size(), 2u);
  EXPECT_EQ(rest.steps[0].kind, SourceReader::Step::Kind::kWatermark);
  ASSERT_EQ(rest.steps[1].kind, SourceReader::Step::Kind::kBatch);
  EXPECT_EQ(rest.steps[1].batch->num_rows(), 200);  // batch 0's rows 800 .. 999
  // The rows are the table's rows 800 ..: a pure function of the row number.
  ASSERT_OK_AND_ASSIGN(auto expected, GenerateTableRows(params, 800, 200));
  EXPECT_TRUE(rest.steps[1].batch->Equals(*expected));
  // Watermarks after the restore never go back to or below the one before the snapshot.
  WatermarkMs previous = kNoWatermark;
  for (const auto& step : rest.steps) {
    if (step.kind != SourceReader::Step::Kind::kWatermark) continue;
    EXPECT_GT(step.watermark, previous);
    previous = step.watermark;
  }
}

TEST(GeneratorSourceTest, UnboundedTasksRewindToTheirInterleavedBatches) {
  GeneratorSourceParams params;
  params.table = GeneratorTable::kTransactions;
  params.rows = 0;
  params.batch_rows = 64;
  params.rows_per_second = 1e9;
  params.event_time = EventTimeSpec{"event_time", std::chrono::milliseconds(0)};
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, 2), {}, {}));
  ASSERT_OK_AND_ASSIGN(auto rest, testing::CheckSourceRewinds(Maker(bound, 1, 2), 5, 7));
  EXPECT_FALSE(rest.ended);
  EXPECT_EQ(rest.batches(), 7);
}

TEST(GeneratorSourceTest, RestoreRefusesAnotherTasksSnapshot) {
  GeneratorSourceParams params;
  params.rows = 1000;
  params.batch_rows = 100;
  ASSERT_OK_AND_ASSIGN(auto bound, BindOperator(SourceSpec(params, 2), {}, {}));
  ASSERT_OK_AND_ASSIGN(auto first, Maker(bound, 0, 2)());
  testing::MemoryState state;
  ASSERT_OK(first->Snapshot(4, state.writer()));
  ASSERT_OK_AND_ASSIGN(auto other, Maker(bound, 1, 2)());
  ASSERT_RAISES_WITH(Invalid, "generator source task 1 restoring checkpoint 4",
                     other->Restore(4, state.reader()));
  testing::MemoryState empty;
  ASSERT_RAISES_WITH(Invalid, "has no part 'position'", other->Restore(4, empty.reader()));
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(GeneratorSourceTest, ShuffleTableParamsInvertShuffleTableOptions) {
  DataGeneratorOptions options;
  options.batch_rows = 777;
  options.key_cardinality = 99;
  options.distribution = KeyDistribution::kSkewed;
  options.hot_key_fraction = 0.25;
  options.string_key = true;
  options.payload_columns = 5;
  options.seed = 7;
  const GeneratorSourceParams params = ShuffleTableParams(options, 7770);
  EXPECT_EQ(params.table, GeneratorTable::kShuffle);
  EXPECT_EQ(params.rows, 7770);
  const DataGeneratorOptions back = ShuffleTableOptions(params);
  EXPECT_EQ(back.batch_rows, 777);
  EXPECT_EQ(back.key_cardinality, 99);
  EXPECT_EQ(back.distribution, KeyDistribution::kSkewed);
  EXPECT_EQ(back.hot_key_fraction, 0.25);
  EXPECT_TRUE(back.string_key);
  EXPECT_EQ(back.payload_columns, 5);
  EXPECT_EQ(back.seed, 7u);
}

}  // namespace
}  // namespace sabot
