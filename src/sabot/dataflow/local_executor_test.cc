#include "sabot/dataflow/local_executor.h"

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <filesystem>
#include <set>
#include <thread>

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <gtest/gtest.h>

#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace cp = arrow::compute;

GeneratorSourceParams Transactions(int64_t rows) {
  GeneratorSourceParams params;
  params.table = GeneratorTable::kTransactions;
  params.rows = rows;
  params.batch_rows = 4096;
  params.key_cardinality = 500;
  return params;
}

// Every row of `table`, sorted by all its columns: equal multisets give equal tables.
std::shared_ptr<arrow::Table> Sorted(const std::shared_ptr<arrow::Table>& table) {
  std::vector<cp::SortKey> keys;
  for (const auto& field : table->schema()->fields()) keys.emplace_back(field->name());
  auto indices = cp::SortIndices(arrow::Datum(table), cp::SortOptions(keys)).ValueOrDie();
  auto sorted = cp::Take(arrow::Datum(table), arrow::Datum(indices)).ValueOrDie().table();
  return sorted->CombineChunks().ValueOrDie();
}

// The source's rows read directly (no executor, no shuffle), with amount doubled by Arrow's
// multiply kernel: the reference the jobs below must reproduce.
std::shared_ptr<arrow::Table> ReferenceDoubledAmounts(int64_t rows) {
  auto collected = std::make_shared<CollectedOutput>();
  PlanBuilder b;
  b.Source(Transactions(rows), 1).Sink(CollectSinkParams{}, 1, "out");
  auto plan = b.Build().ValueOrDie();
  LocalExecutorOptions options;
  options.collected = collected;
  EXPECT_OK(RunLocalJob(plan, options).status());
  auto table = collected->Table("out").ValueOrDie();
  auto amount = table->GetColumnByName("amount");
  auto doubled = cp::Multiply(arrow::Datum(amount), arrow::Datum(2.0)).ValueOrDie().chunked_array();
  const int index = table->schema()->GetFieldIndex("amount");
  // A computed column is nullable (docs/expressions.md).
  return table->SetColumn(index, arrow::field("amount", arrow::float64()), doubled).ValueOrDie();
}

struct Shape {
  int32_t sources;
  int32_t maps;
  int32_t sinks;
};

class LocalExecutorShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(LocalExecutorShapes, KeyedPipelineGivesTheReferenceRowsWithKeysTogether) {
  const Shape shape = GetParam();
  constexpr int64_t kRows = 60'000;
  auto reference = Sorted(ReferenceDoubledAmounts(kRows));
  for (ShuffleMode mode : {ShuffleMode::kPipelined, ShuffleMode::kBlocking}) {
    SCOPED_TRACE(ShuffleModeName(mode));
    auto collected = std::make_shared<CollectedOutput>();
    PlanBuilder b;
    b.SetOptions(PlanOptions{.shuffle_mode = mode, .chaining = true});
    b.Source(Transactions(kRows), shape.sources)
        .Rebalance()
        .Map("amount", "amount * 2", shape.maps)
        .KeyBy({"user_id"})
        .Sink(CollectSinkParams{}, shape.sinks, "out");
    ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
    LocalExecutorOptions options;
    options.threads = 2;  // more tasks than threads
    options.collected = collected;
    ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
    ASSERT_OK_AND_ASSIGN(auto table, collected->Table("out"));
    ASSERT_EQ(table->num_rows(), kRows);
    auto sorted = Sorted(table);
    EXPECT_TRUE(sorted->Equals(*reference)) << sorted->schema()->ToString() << "\n"
                                            << reference->schema()->ToString() << "\n"
                                            << sorted->Slice(0, 3)->ToString() << "\n"
                                            << reference->Slice(0, 3)->ToString();

    // key_by: each user id reaches exactly one sink task.
    std::map<int64_t, int32_t> task_of_user;
    for (int32_t task = 0; task < shape.sinks; ++task) {
      for (const auto& batch : collected->Batches("out", task)) {
        auto users = std::static_pointer_cast<arrow::Int64Array>(
            batch->GetColumnByName("user_id"));
        for (int64_t i = 0; i < users->length(); ++i) {
          auto [it, inserted] = task_of_user.emplace(users->Value(i), task);
          ASSERT_EQ(it->second, task) << "user " << users->Value(i) << " in two tasks";
        }
      }
    }
    // The summary: every operator's rows, and the hash edge's N x M matrix sums to the rows.
    for (const OperatorReport& op : report.operators) EXPECT_EQ(op.rows_out, kRows) << op.name;
    bool saw_hash = false;
    for (const EdgeReport& edge : report.edges) {
      if (edge.type != "hash") continue;
      saw_hash = true;
      EXPECT_EQ(edge.num_writers, shape.maps);
      EXPECT_EQ(edge.num_partitions, shape.sinks);
      EXPECT_EQ(edge.total_rows(), kRows);
    }
    EXPECT_TRUE(saw_hash);
  }
}

INSTANTIATE_TEST_SUITE_P(Parallelism, LocalExecutorShapes,
                         ::testing::Values(Shape{1, 1, 1}, Shape{4, 4, 2}, Shape{3, 3, 7},
                                           Shape{2, 10, 5}));

TEST(LocalExecutorTest, TenMapTasksAndFiveSinkTasksRunOnTwoThreads) {
  auto collected = std::make_shared<CollectedOutput>();
  PlanBuilder b;
  b.Source(Transactions(100'000), 10)
      .Filter("amount > 50")
      .KeyBy({"user_id"})
      .Sink(CollectSinkParams{}, 5, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = collected;
  ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
  ASSERT_OK_AND_ASSIGN(auto table, collected->Table("out"));
  // Reference: the filter by Arrow's kernel over the source's rows.
  auto all = ReferenceDoubledAmounts(100'000);  // amounts doubled: halve the threshold
  auto mask = cp::CallFunction("greater", {arrow::Datum(all->GetColumnByName("amount")),
                                          arrow::Datum(100.0)})
                  .ValueOrDie();
  auto expected = cp::Filter(arrow::Datum(all), mask).ValueOrDie().table();
  EXPECT_EQ(table->num_rows(), expected->num_rows());
}

TEST(LocalExecutorTest, AnUnknownColumnFailsBeforeAnyTaskRunsNamingTheOperator) {
  const auto dir = std::filesystem::temp_directory_path() / "sabot_executor_bind_error";
  std::filesystem::remove_all(dir);
  PlanBuilder b;
  b.Source(Transactions(1000), 2)
      .Map("x", "amount_usd * 2", std::nullopt, "convert")
      .Sink(FileSinkParams{.format = FileFormat::kCsv, .directory = dir.string()});
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  auto result = RunLocalJob(plan, LocalExecutorOptions{});
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsKeyError()) << result.status();
  EXPECT_NE(result.status().message().find("operator 'convert'"), std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("amount_usd"), std::string::npos) << result.status();
}

TEST(LocalExecutorTest, AFailingTaskFailsTheJobAndLeavesNoSinkFile) {
  const auto dir = std::filesystem::temp_directory_path() / "sabot_executor_failure";
  std::filesystem::remove_all(dir);
  PlanBuilder b;
  // user_id / (user_id - user_id) divides by zero once a batch arrives: integer division fails.
  b.Source(Transactions(50'000), 3)
      .Map("bad", "user_id / (user_id - user_id)", 3, "divide")
      .Rebalance()
      .Sink(FileSinkParams{.format = FileFormat::kParquet, .directory = dir.string()}, 2);
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  LocalExecutorOptions options;
  options.threads = 2;
  auto result = RunLocalJob(plan, options);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("operator 'divide'"), std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("task "), std::string::npos) << result.status();
  EXPECT_NE(result.status().message().find("divide by zero"), std::string::npos)
      << result.status();
  // Nothing under a final name, and no temporary file left either.
  if (std::filesystem::exists(dir)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      ADD_FAILURE() << "left behind: " << entry.path();
    }
  }
}

TEST(LocalExecutorTest, CancellingStopsAnUnboundedJobPromptly) {
  GeneratorSourceParams unbounded = Transactions(0);
  unbounded.rows_per_second = 200'000;
  PlanBuilder b;
  b.Source(unbounded, 2).KeyBy({"user_id"}).Sink(ConsoleSinkParams{.max_rows = 0}, 2);
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::atomic<bool> cancel{false};
  std::ostringstream console;
  LocalExecutorOptions options;
  options.threads = 2;
  options.cancel = &cancel;
  options.console = &console;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  auto result = RunLocalJob(plan, options);
  canceller.join();
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsCancelled()) << result.status();
}

TEST(LocalExecutorTest, ProgressIsReportedWhileTheJobRuns) {
  GeneratorSourceParams slow = Transactions(20'000);
  slow.rows_per_second = 40'000;  // about half a second
  PlanBuilder b;
  b.Source(slow, 2).Rebalance().Sink(CollectSinkParams{}, 3, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::atomic<int> reports{0};
  std::atomic<int64_t> last_rows{0};
  LocalExecutorOptions options;
  options.collected = std::make_shared<CollectedOutput>();
  options.progress_interval = std::chrono::milliseconds(100);
  options.on_progress = [&](const JobProgress& progress) {
    ++reports;
    EXPECT_EQ(progress.tasks_total, 5);
    last_rows = progress.operators.front().rows_out;
  };
  ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
  EXPECT_GE(reports.load(), 2);
  EXPECT_GT(last_rows.load(), 0);
  EXPECT_EQ(report.operators.back().rows_out, 20'000);
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(LocalExecutorBudgetTest, PipelinedWritersAreFittedToASmallBudget) {
  // 8 x 8 and 8 x 3 pipelined edges at 16 MiB: with 256 KiB blocks the writers' working sets
  // would not all fit half the budget; the executor gives them smaller blocks instead of letting
  // them wait for each other.
  auto collected = std::make_shared<CollectedOutput>();
  PlanBuilder b;
  b.Source(Transactions(80'000), 8)
      .KeyBy({"user_id"})
      .Map("amount", "amount * 2", 8)
      .Rebalance()
      .Sink(CollectSinkParams{}, 3, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  LocalExecutorOptions options;
  options.threads = 2;
  options.memory_budget = 16LL << 20;
  options.collected = collected;
  ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
  ASSERT_OK_AND_ASSIGN(auto table, collected->Table("out"));
  EXPECT_EQ(table->num_rows(), 80'000);
  EXPECT_LE(report.peak_memory_bytes, options.memory_budget);
}

TEST(LocalExecutorBudgetTest, SixtyFourBySixtyFourFitsTheDefaultBudget) {
  auto collected = std::make_shared<CollectedOutput>();
  PlanBuilder b;
  b.Source(Transactions(10'000), 64).Rebalance().Sink(CollectSinkParams{}, 64, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = collected;
  ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
  ASSERT_OK_AND_ASSIGN(auto table, collected->Table("out"));
  EXPECT_EQ(table->num_rows(), 10'000);
}

TEST(LocalExecutorBudgetTest, ABudgetNoBlockSizeCanFitIsRefusedWithTheNumbers) {
  PlanBuilder b;
  b.Source(Transactions(1000), 64).Rebalance().Sink(ConsoleSinkParams{.max_rows = 0}, 64, "sink");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::ostringstream console;
  LocalExecutorOptions options;
  options.memory_budget = 4LL << 20;
  options.console = &console;
  auto result = RunLocalJob(plan, options);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsOutOfMemory()) << result.status();
  EXPECT_NE(result.status().message().find("raise the memory budget"), std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("into operator 'sink'"), std::string::npos)
      << result.status();
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(LocalExecutorWatermarkTest, WatermarksCrossShufflesAsTheMinimumOverWriters) {
  // Transactions with event time, rate-limited so the job runs a while: the watermark the sink
  // sees (after a 3 -> 2 rebalance and a 2 -> 3 hash) advances while the job runs, and every
  // operator's reaches the end of time when it ends.
  GeneratorSourceParams params = Transactions(30'000);
  params.rows_per_second = 60'000;  // about half a second
  params.event_time = EventTimeSpec{"event_time", std::chrono::milliseconds(2500)};
  PlanBuilder b;
  b.Source(params, 3, "source")
      .Rebalance()
      .Map("amount", "amount * 2", 2, "map")
      .KeyBy({"user_id"})
      .Sink(CollectSinkParams{}, 3, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::mutex mutex;
  std::vector<std::array<int64_t, 3>> seen;  // source, map, sink watermarks per snapshot
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = std::make_shared<CollectedOutput>();
  options.progress_interval = std::chrono::milliseconds(50);
  options.on_progress = [&](const JobProgress& progress) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back({progress.operators[0].watermark, progress.operators[1].watermark,
                    progress.operators[2].watermark});
  };
  ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
  for (const OperatorReport& op : report.operators) {
    EXPECT_EQ(op.watermark, kEndOfTimeWatermark) << op.name;
  }
  // The sink's watermark moved while the job ran: watermarks crossed both shuffles as events
  // (without them it would stay unset until the end), and it only moves forward.
  bool advanced_while_running = false;
  int64_t previous = kNoWatermark;
  for (const auto& [source, map, sink] : seen) {
    EXPECT_GE(sink, previous);
    previous = sink;
    if (sink > kNoWatermark && sink < kEndOfTimeWatermark) advanced_while_running = true;
  }
  EXPECT_TRUE(advanced_while_running) << seen.size() << " snapshots";
}

// Two sources into one window: `fast` streams for about 1.5 s; `slow` sends its first row at
// once and its second about a second later. Returns the job's report.
JobReport RunWithASlowInput(std::chrono::milliseconds idle_timeout, int64_t* counted) {
  GeneratorSourceParams fast = Transactions(60'000);
  fast.batch_rows = 500;
  fast.rows_per_second = 40'000;
  fast.event_time = EventTimeSpec{"event_time", std::chrono::milliseconds(2500)};
  GeneratorSourceParams slow = Transactions(2);
  slow.batch_rows = 1;
  slow.rows_per_second = 1;
  slow.event_time = fast.event_time;
  // Both sources feed input 0 of the window (a union); the builder makes no unions.
  auto plan = LogicalPlan::Make(
      {OperatorSpec{0, "fast", 1, fast}, OperatorSpec{1, "slow", 1, slow},
       OperatorSpec{2, "window", 1, Tumbling(std::chrono::seconds(1))},
       OperatorSpec{3, "agg", 1, AggregateParams{{Count()}}},
       OperatorSpec{4, "out", 1, CollectSinkParams{}}},
      {EdgeSpec{0, 2, 0, {}}, EdgeSpec{1, 2, 0, {}}, EdgeSpec{2, 3, 0, {}}, EdgeSpec{3, 4, 0, {}}},
      PlanOptions{ShuffleMode::kPipelined, true, idle_timeout});
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = std::make_shared<CollectedOutput>();
  auto report = RunLocalJob(*plan, options);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  auto table = options.collected->Table("out").ValueOrDie();
  *counted = 0;
  auto counts = table->GetColumnByName("count");
  for (const auto& chunk : counts->chunks()) {
    const auto& values = static_cast<const arrow::Int64Array&>(*chunk);
    for (int64_t i = 0; i < values.length(); ++i) *counted += values.Value(i);
  }
  return *report;
}

TEST(LocalExecutorTimerTest, ProcessingTimeWindowsFireByTimerWhileTheJobRuns) {
  // A source paced over about a second into 100 ms processing-time windows: windows fire while
  // the source still sends (by the operator's timer: no watermark, no end of input yet), and
  // every row is in exactly one window.
  GeneratorSourceParams params = Transactions(4'000);
  params.batch_rows = 100;
  params.rows_per_second = 4'000;
  WindowParams window = Tumbling(std::chrono::milliseconds(100));
  window.time = TimeDomain::kProcessingTime;
  PlanBuilder b;
  b.Source(params, 1, "source")
      .KeyBy({"user_id"})
      .Window(window, 2, "window")
      .Aggregate({Count()}, 2, "agg")
      .Sink(CollectSinkParams{}, 2, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  std::mutex mutex;
  bool fired_while_running = false;
  LocalExecutorOptions options;
  options.threads = 2;
  options.collected = std::make_shared<CollectedOutput>();
  options.progress_interval = std::chrono::milliseconds(50);
  options.on_progress = [&](const JobProgress& progress) {
    std::lock_guard<std::mutex> lock(mutex);
    const OperatorReport& source = progress.operators[0];
    const OperatorReport& agg = progress.operators[2];
    if (agg.rows_out > 0 && source.rows_out < 4'000) fired_while_running = true;
  };
  ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
  EXPECT_EQ(report.operators[2].name, "agg");
  EXPECT_EQ(report.operators[2].late_rows, 0);
  ASSERT_OK_AND_ASSIGN(auto table, options.collected->Table("out"));
  int64_t counted = 0;
  std::set<int64_t> starts;
  ASSERT_OK_AND_ASSIGN(auto combined, table->CombineChunksToBatch());
  const auto& counts = static_cast<const arrow::Int64Array&>(*combined->GetColumnByName("count"));
  const auto& start = static_cast<const arrow::TimestampArray&>(*combined->GetColumnByName("window_start"));
  for (int64_t i = 0; i < combined->num_rows(); ++i) {
    counted += counts.Value(i);
    starts.insert(start.Value(i));
  }
  EXPECT_EQ(counted, 4'000);
  EXPECT_GE(starts.size(), 2u);
  EXPECT_TRUE(fired_while_running);
}

TEST(LocalExecutorWatermarkTest, AnIdleInputDoesNotHoldTheWatermarkBack) {
  // Without an idle timeout the slow source's watermark holds every window until its second
  // row arrives: nothing is late.
  int64_t counted = 0;
  JobReport held = RunWithASlowInput(std::chrono::milliseconds(0), &counted);
  EXPECT_EQ(held.operators.at(3).name, "agg");
  EXPECT_EQ(held.operators.at(3).late_rows, 0);
  EXPECT_EQ(counted, 60'002);
  // With a 200 ms idle timeout the slow source is idle after its first row: the fast source's
  // watermark alone fires the windows (it is many seconds of event time ahead by the time the
  // slow source's second row comes, a second later), so that row, of the first second of event
  // time, comes too late: counted, never silently lost. The slow source rejoined (the watermark
  // did not go back: the row is late, not re-fired).
  JobReport idle = RunWithASlowInput(std::chrono::milliseconds(200), &counted);
  EXPECT_EQ(idle.operators.at(3).late_rows, 1);
  EXPECT_EQ(counted, 60'001);
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(LocalExecutorSinkTest, TwoFileSinksInOneDirectoryAreRefused) {
  const auto dir = std::filesystem::temp_directory_path() / "sabot_executor_same_dir";
  std::filesystem::remove_all(dir);
  PlanBuilder b;
  Stream source = b.Source(Transactions(1000), 2);
  source.Filter("amount > 10", std::nullopt, "big")
      .Sink(FileSinkParams{.format = FileFormat::kParquet, .directory = dir.string()}, 1, "a");
  source.Filter("amount <= 10", std::nullopt, "small")
      .Sink(FileSinkParams{.format = FileFormat::kCsv, .directory = dir.string()}, 1, "b");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  auto result = RunLocalJob(plan, LocalExecutorOptions{});
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsInvalid()) << result.status();
  EXPECT_NE(result.status().message().find("operator 'b'"), std::string::npos) << result.status();
  EXPECT_NE(result.status().message().find("as operator 'a' does"), std::string::npos)
      << result.status();
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

// user_id -> rows of a transactions table with `seed`, read straight from the source (no
// shuffle): the per-key counts the join test's reference multiplies.
std::map<int64_t, int64_t> UserCounts(int64_t rows, uint64_t seed) {
  auto collected = std::make_shared<CollectedOutput>();
  GeneratorSourceParams params = Transactions(rows);
  params.seed = seed;
  PlanBuilder b;
  b.Source(params, 1).Sink(CollectSinkParams{}, 1, "out");
  LocalExecutorOptions options;
  options.collected = collected;
  EXPECT_OK(RunLocalJob(b.Build().ValueOrDie(), options).status());
  std::map<int64_t, int64_t> counts;
  auto table = collected->Table("out").ValueOrDie()->CombineChunks().ValueOrDie();
  auto users = std::static_pointer_cast<arrow::Int64Array>(table->GetColumnByName("user_id")->chunk(0));
  for (int64_t i = 0; i < users->length(); ++i) ++counts[users->Value(i)];
  return counts;
}

// Two shuffles into one task (a join's two inputs): every run must end, in both modes, with
// the inner join's row count, sum over users of left rows x right rows, and each output row's
// keys equal. Repeated, because a task whose last input event was an input's end once waited
// forever for a wake that never came (the reader's kEnd follows without a new item).
TEST(LocalExecutorJoinTest, TwoInputShufflesEndAndJoinEveryKey) {
  constexpr int64_t kLeftRows = 6'000, kRightRows = 1'000;
  const auto left = UserCounts(kLeftRows, 1);
  const auto right = UserCounts(kRightRows, 2);
  int64_t expected = 0;
  for (const auto& [user, count] : left) {
    auto it = right.find(user);
    if (it != right.end()) expected += count * it->second;
  }
  ASSERT_GT(expected, 0);
  for (ShuffleMode mode : {ShuffleMode::kPipelined, ShuffleMode::kBlocking}) {
    for (auto [sources, joins] : {std::pair{1, 1}, std::pair{3, 2}, std::pair{2, 5}}) {
      for (int run = 0; run < 5; ++run) {
        SCOPED_TRACE(std::string(ShuffleModeName(mode)) + " " + std::to_string(sources) + "->" +
                     std::to_string(joins) + " run " + std::to_string(run));
        GeneratorSourceParams l = Transactions(kLeftRows), r = Transactions(kRightRows);
        l.seed = 1;
        r.seed = 2;
        auto collected = std::make_shared<CollectedOutput>();
        PlanBuilder b;
        b.SetOptions(PlanOptions{.shuffle_mode = mode, .chaining = true});
        Stream right_stream = b.Source(r, sources, "right");
        b.Source(l, sources, "left")
            .Join(right_stream, {"user_id"}, {"user_id"}, JoinType::kInner, joins, "join")
            .Sink(CollectSinkParams{}, {}, "out");
        ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
        LocalExecutorOptions options;
        options.threads = 2;
        options.collected = collected;
        options.stall_timeout = std::chrono::seconds(20);
        ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
        ASSERT_OK_AND_ASSIGN(auto table, collected->Table("out"));
        ASSERT_EQ(table->num_rows(), expected);
        ASSERT_OK_AND_ASSIGN(auto equal, cp::CallFunction("equal", {table->GetColumnByName("user_id"),
                                                                    table->GetColumnByName("user_id_right")}));
        ASSERT_OK_AND_ASSIGN(auto all, cp::All(equal));
        EXPECT_TRUE(all.scalar_as<arrow::BooleanScalar>().value);
      }
    }
  }
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(LocalExecutorBudgetTest, BlockingWritersOfOneTaskAreFittedTogether) {
  // One source chain with 16 output shuffles of 7 partitions: each source task opens 16 blocking
  // writers at once and cannot move a row before all are admitted. Fitted one writer at a time,
  // three tasks each held part of the budget and waited for the rest forever (a stall); fitted
  // per task, they run.
  auto collected = std::make_shared<CollectedOutput>();
  PlanBuilder b;
  PlanOptions plan_options;
  plan_options.shuffle_mode = ShuffleMode::kBlocking;
  b.SetOptions(plan_options);
  Stream source = b.Source(Transactions(30'000), 3);
  constexpr int kConsumers = 16;
  for (int i = 0; i < kConsumers; ++i) {
    source.Rebalance()
        .Filter("amount >= 0", 7, "f" + std::to_string(i))
        .Sink(CollectSinkParams{}, 7, "out" + std::to_string(i));
  }
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  LocalExecutorOptions options;
  options.threads = 2;
  options.memory_budget = 64LL << 20;
  options.collected = collected;
  options.stall_timeout = std::chrono::seconds(20);
  ASSERT_OK_AND_ASSIGN(JobReport report, RunLocalJob(plan, options));
  for (int i = 0; i < kConsumers; ++i) {
    ASSERT_OK_AND_ASSIGN(auto table, collected->Table("out" + std::to_string(i)));
    EXPECT_EQ(table->num_rows(), 30'000) << "consumer " << i;
  }
  EXPECT_LE(report.peak_memory_bytes, options.memory_budget);
}

}  // namespace
}  // namespace sabot
