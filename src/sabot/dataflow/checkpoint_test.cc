// Aligned checkpoints and recovery in the local executor (docs/fault-tolerance.md): barriers
// through shuffles, snapshots, restarts from the latest checkpoint after an injected failure.
//
// The failures are injected by test operators that wrap a bound operator (a FailOnce wrapper):
// nothing in the production paths knows about them.

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <gtest/gtest.h>

#include "sabot/dataflow/checkpoint_storage.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;
namespace cp = arrow::compute;
using std::chrono::milliseconds;

// What the test operators share across the tasks and attempts of one job.
struct Script {
  // Checkpoint completions heard by any instance (CheckpointComplete).
  std::atomic<int64_t> completions{0};
  // Failures still to inject: an armed FailOnce operator fails the first batch it processes
  // after its instance heard a completion and took `after_rows` rows since.
  std::atomic<int32_t> failures_left{1};
  int64_t after_rows = 1;
  std::atomic<int32_t> failures_injected{0};
  // Fail even without a completion heard (a job with checkpoints off).
  bool without_completion = false;
  // Sources hold their second half back until a checkpoint completed, so the failure always
  // comes after one (no timing in the assertions).
  // Source restores (Restore calls), counted by the test sources.
  std::atomic<int64_t> restores{0};
};

// A source over a provided table: subtask s of p emits batches s, s + p, s + 2p, ... of
// `batch_rows` rows, pausing 1 ms between batches; its position is the next batch.
class PacedSource : public SourceReader {
 public:
  // `empty_subtask`: that subtask has no batches (it ends at once).
  PacedSource(std::shared_ptr<arrow::Table> table, int64_t batch_rows, int32_t subtask,
              int32_t parallelism, std::shared_ptr<Script> script, int32_t empty_subtask = -1)
      : table_(table->CombineChunks().ValueOrDie()),
        batch_rows_(batch_rows),
        subtask_(subtask),
        parallelism_(parallelism),
        script_(std::move(script)),
        next_(subtask) {
    batches_ = (table_->num_rows() + batch_rows_ - 1) / batch_rows_;
    if (empty_subtask >= 0) {
      // The others share its batches.
      parallelism_ = parallelism - 1;
      next_ = subtask == empty_subtask ? batches_ : subtask - (subtask > empty_subtask ? 1 : 0);
    }
  }

  arrow::Result<Step> Next() override {
    Step step;
    if (next_ >= batches_) return step;  // kEnd
    const auto now = std::chrono::steady_clock::now();
    const bool second_half = next_ * 2 >= batches_;
    if (now < ready_at_ || (second_half && script_->completions.load() == 0)) {
      step.kind = Step::Kind::kWait;
      step.ready_at = std::max(ready_at_, now + milliseconds(1));
      return step;
    }
    const int64_t offset = next_ * batch_rows_;
    auto slice = table_->Slice(offset, std::min(batch_rows_, table_->num_rows() - offset));
    ARROW_ASSIGN_OR_RAISE(auto batch, slice->CombineChunksToBatch());
    next_ += parallelism_;
    rows_ += batch->num_rows();
    ready_at_ = now + milliseconds(1);
    step.kind = Step::Kind::kBatch;
    step.batch = std::move(batch);
    return step;
  }
  arrow::Status Snapshot(CheckpointId, StateWriter* state) override {
    arrow::Int64Builder next;
    ARROW_RETURN_NOT_OK(next.Append(next_));
    ARROW_ASSIGN_OR_RAISE(auto array, next.Finish());
    return state->Put("position",
                      arrow::Table::Make(arrow::schema({arrow::field("next", arrow::int64())}),
                                         {array}));
  }
  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    ARROW_ASSIGN_OR_RAISE(auto table, state->Get("position"));
    if (table == nullptr || table->num_rows() != 1) {
      return arrow::Status::Invalid("checkpoint ", id, " has no source position");
    }
    next_ = std::static_pointer_cast<arrow::Int64Array>(table->column(0)->chunk(0))->Value(0);
    script_->restores.fetch_add(1);
    return arrow::Status::OK();
  }
  int64_t rows_out() const override { return rows_; }

 private:
  std::shared_ptr<arrow::Table> table_;
  int64_t batch_rows_;
  int32_t subtask_;
  int32_t parallelism_;
  std::shared_ptr<Script> script_;
  int64_t next_;
  int64_t batches_ = 0;
  int64_t rows_ = 0;
  std::chrono::steady_clock::time_point ready_at_{};
};

// Sums `value` per `key` and emits (key, sum) at the end; its snapshot is the sums so far.
class SummingOperator : public Operator {
 public:
  explicit SummingOperator(std::shared_ptr<arrow::Schema> schema) : schema_(std::move(schema)) {}
  arrow::Status Process(int32_t, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput*) override {
    auto keys = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("key"));
    auto values = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("value"));
    for (int64_t i = 0; i < batch->num_rows(); ++i) sums_[keys->Value(i)] += values->Value(i);
    rows_in_ += batch->num_rows();
    return arrow::Status::OK();
  }
  arrow::Status Finish(OperatorOutput* out) override {
    ARROW_ASSIGN_OR_RAISE(auto table, Table());
    if (table->num_rows() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batch, table->CombineChunksToBatch());
    rows_out_ += batch->num_rows();
    return out->Emit(batch);
  }
  arrow::Status Snapshot(CheckpointId, StateWriter* state) override {
    ARROW_ASSIGN_OR_RAISE(auto table, Table());
    return state->Put("sums", table);
  }
  arrow::Status Restore(CheckpointId, StateReader* state) override {
    ARROW_ASSIGN_OR_RAISE(auto table, state->Get("sums"));
    if (table == nullptr) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batch, table->CombineChunksToBatch());
    auto keys = std::static_pointer_cast<arrow::Int64Array>(batch->column(0));
    auto values = std::static_pointer_cast<arrow::Int64Array>(batch->column(1));
    for (int64_t i = 0; i < batch->num_rows(); ++i) sums_[keys->Value(i)] = values->Value(i);
    return arrow::Status::OK();
  }
  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }

 private:
  arrow::Result<std::shared_ptr<arrow::Table>> Table() const {
    arrow::Int64Builder keys;
    arrow::Int64Builder values;
    for (const auto& [key, sum] : sums_) {
      ARROW_RETURN_NOT_OK(keys.Append(key));
      ARROW_RETURN_NOT_OK(values.Append(sum));
    }
    ARROW_ASSIGN_OR_RAISE(auto key_array, keys.Finish());
    ARROW_ASSIGN_OR_RAISE(auto value_array, values.Finish());
    return arrow::Table::Make(schema_, {key_array, value_array});
  }

  std::shared_ptr<arrow::Schema> schema_;
  std::map<int64_t, int64_t> sums_;
  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
};

// Wraps an operator: forwards everything, and fails one Process call (IOError "injected
// failure") once its instance heard a checkpoint completion (or was restored from one) and took
// `after_rows` rows since, while the script has failures left.
class FailOnce : public Operator {
 public:
  FailOnce(std::unique_ptr<Operator> inner, std::shared_ptr<Script> script)
      : inner_(std::move(inner)), script_(std::move(script)) {}
  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    if (heard_ || script_->without_completion) {
      since_ += batch->num_rows();
      int32_t left = script_->failures_left.load();
      if (since_ >= script_->after_rows && left > 0 &&
          script_->failures_left.compare_exchange_strong(left, left - 1)) {
        script_->failures_injected.fetch_add(1);
        return arrow::Status::IOError("injected failure");
      }
    }
    return inner_->Process(input, batch, out);
  }
  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    return inner_->OnWatermark(watermark, out);
  }
  arrow::Status Finish(OperatorOutput* out) override { return inner_->Finish(out); }
  arrow::Status PrepareCommit() override { return inner_->PrepareCommit(); }
  arrow::Status Commit() override { return inner_->Commit(); }
  void Abort() override { inner_->Abort(); }
  int64_t rows_in() const override { return inner_->rows_in(); }
  int64_t rows_out() const override { return inner_->rows_out(); }
  int64_t late_rows() const override { return inner_->late_rows(); }
  int64_t state_spilled_bytes() const override { return inner_->state_spilled_bytes(); }
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    return inner_->Snapshot(id, state);
  }
  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    heard_ = true;  // restored from a complete checkpoint: armed at once
    return inner_->Restore(id, state);
  }
  arrow::Status CheckpointComplete(CheckpointId id) override {
    heard_ = true;
    script_->completions.fetch_add(1);
    return inner_->CheckpointComplete(id);
  }
  std::optional<std::chrono::steady_clock::time_point> NextTimer() const override {
    return inner_->NextTimer();
  }
  arrow::Status OnTimer(OperatorOutput* out) override { return inner_->OnTimer(out); }

 private:
  std::unique_ptr<Operator> inner_;
  std::shared_ptr<Script> script_;
  bool heard_ = false;
  int64_t since_ = 0;
};

// Wraps a source reader: tells the script about restores (everything else forwarded).
class CountingRestores : public SourceReader {
 public:
  CountingRestores(std::unique_ptr<SourceReader> inner, std::shared_ptr<Script> script)
      : inner_(std::move(inner)), script_(std::move(script)) {}
  arrow::Result<Step> Next() override { return inner_->Next(); }
  void Abort() override { inner_->Abort(); }
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    return inner_->Snapshot(id, state);
  }
  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    script_->restores.fetch_add(1);
    return inner_->Restore(id, state);
  }
  int64_t rows_out() const override { return inner_->rows_out(); }

 private:
  std::unique_ptr<SourceReader> inner_;
  std::shared_ptr<Script> script_;
};

// (key, value): key i % 97, value i, for i in [0, rows).
std::shared_ptr<arrow::Table> InputTable(int64_t rows) {
  arrow::Int64Builder keys;
  arrow::Int64Builder values;
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_OK(keys.Append(i % 97));
    EXPECT_OK(values.Append(i));
  }
  return arrow::Table::Make(
      arrow::schema({arrow::field("key", arrow::int64()), arrow::field("value", arrow::int64())}),
      {keys.Finish().ValueOrDie(), values.Finish().ValueOrDie()});
}

// The sums per key computed directly from the input: the reference.
std::map<int64_t, int64_t> ReferenceSums(int64_t rows) {
  std::map<int64_t, int64_t> sums;
  for (int64_t i = 0; i < rows; ++i) sums[i % 97] += i;
  return sums;
}

std::map<int64_t, int64_t> SumsOf(const std::shared_ptr<arrow::Table>& table, int64_t* rows) {
  std::map<int64_t, int64_t> sums;
  auto batch = table->CombineChunksToBatch().ValueOrDie();
  *rows = batch->num_rows();
  auto keys = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("key"));
  auto values = std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("value"));
  for (int64_t i = 0; i < batch->num_rows(); ++i) sums[keys->Value(i)] += values->Value(i);
  return sums;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sabot_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CheckpointOptions Checkpoints(int32_t max_restarts) const {
    CheckpointOptions options;
    options.interval = milliseconds(20);
    options.directory = dir_.string();
    options.retained = 2;
    options.max_restarts = max_restarts;
    options.restart_delay = milliseconds(10);
    options.restart_backoff = 2.0;
    options.max_restart_delay = milliseconds(40);
    return options;
  }

  // source (2 tasks, paced) -> hash by key -> sum (3 tasks, FailOnce) -> collect (1 task). The
  // source and the sum are test operators put in place of the bound table source and project.
  arrow::Result<JobReport> RunSumJob(int64_t rows, std::optional<CheckpointOptions> checkpoints,
                                     std::shared_ptr<Script> script,
                                     std::shared_ptr<CollectedOutput> collected,
                                     ShuffleMode mode = ShuffleMode::kPipelined,
                                     int32_t source_tasks = 2, int32_t empty_subtask = -1) {
    auto tables = std::make_shared<ProvidedTables>();
    auto input = InputTable(rows);
    ARROW_RETURN_NOT_OK(tables->Add("input", input));
    PlanBuilder b;
    PlanOptions plan_options;
    plan_options.shuffle_mode = mode;
    if (checkpoints) plan_options.checkpoint = *checkpoints;
    b.SetOptions(plan_options);
    b.Source(TableSourceParams{.table = "input", .batch_rows = 100}, source_tasks, "source")
        .KeyBy({"key"})
        .Project({{"key", "key"}, {"value", "value"}}, 3, "sum")
        .Sink(CollectSinkParams{}, 1, "out");
    ARROW_ASSIGN_OR_RAISE(auto plan, b.Build());
    LocalExecutorOptions options;
    options.threads = 2;
    options.collected = collected;
    options.tables = tables;
    ARROW_ASSIGN_OR_RAISE(auto bound, BindJob(plan, BindOptionsOf(options), options.shuffle));
    auto job = std::make_shared<BoundJob>(*bound);
    for (auto& [id, op] : job->operators) {
      const std::string& name = plan.FindOperator(id)->name;
      if (name == "source") {
        op.make_source = [input, script, empty_subtask](const TaskContext& context)
            -> arrow::Result<std::unique_ptr<SourceReader>> {
          return std::make_unique<PacedSource>(input, 100, context.subtask, context.parallelism,
                                               script, empty_subtask);
        };
      } else if (name == "sum") {
        auto schema = op.output_schema;
        op.make_operator = [schema, script](const TaskContext&)
            -> arrow::Result<std::unique_ptr<Operator>> {
          return std::make_unique<FailOnce>(std::make_unique<SummingOperator>(schema), script);
        };
      }
    }
    return RunBoundJob(job, options);
  }

  fs::path dir_;
};

TEST_F(CheckpointTest, CheckpointsCompleteWithoutFailuresAndChangeNoResult) {
  constexpr int64_t kRows = 20'000;
  auto script = std::make_shared<Script>();
  script->failures_left = 0;
  auto collected = std::make_shared<CollectedOutput>();
  ASSERT_OK_AND_ASSIGN(JobReport report, RunSumJob(kRows, Checkpoints(0), script, collected));
  ASSERT_OK_AND_ASSIGN(auto out, collected->Table("out"));
  int64_t rows = 0;
  EXPECT_EQ(SumsOf(out, &rows), ReferenceSums(kRows));
  EXPECT_EQ(rows, 97);
  EXPECT_GE(report.checkpoints.completed, 1);  // the sources' second half waits for one
  EXPECT_GT(report.checkpoints.last_id, 0);
  EXPECT_EQ(report.checkpoints.restarts, 0);
  // The retained checkpoints are on disk, complete and valid.
  ASSERT_OK_AND_ASSIGN(auto storage, CheckpointStorage::Open(dir_.string(), "job", 2));
  ASSERT_OK_AND_ASSIGN(auto latest, storage->LatestValid());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->id, report.checkpoints.last_id);
  EXPECT_EQ(latest->bytes(), report.checkpoints.last_bytes);
  // No checkpoint completes once the sink task ended: the sink is never restored as ended.
  for (const TaskSnapshot& task : latest->tasks) {
    EXPECT_FALSE(task.chain == 2 && task.finished);
  }
  // Every task acked: 2 sources, 3 sums, 1 sink.
  EXPECT_EQ(latest->tasks.size(), 6u);
  ASSERT_OK_AND_ASSIGN(auto ids, storage->ListCheckpoints());
  EXPECT_LE(ids.size(), 2u);
}

TEST_F(CheckpointTest, ATaskFailureRestartsFromTheLatestCheckpointWithTheSameResult) {
  constexpr int64_t kRows = 20'000;
  auto script = std::make_shared<Script>();
  script->failures_left = 1;
  script->after_rows = 200;
  auto collected = std::make_shared<CollectedOutput>();
  ASSERT_OK_AND_ASSIGN(JobReport report, RunSumJob(kRows, Checkpoints(3), script, collected));
  EXPECT_EQ(script->failures_injected.load(), 1);
  EXPECT_EQ(report.checkpoints.restarts, 1);
  EXPECT_GT(report.checkpoints.restored_from, 0);  // restored, not started over
  // Each source task rewound, unless it had ended before the checkpoint (then it restores as
  // ended and produces nothing).
  EXPECT_LE(script->restores.load(), 2);
  // The failure-free result: every row counted exactly once, one row per key (the failed
  // attempt's sink published nothing).
  ASSERT_OK_AND_ASSIGN(auto out, collected->Table("out"));
  int64_t rows = 0;
  EXPECT_EQ(SumsOf(out, &rows), ReferenceSums(kRows));
  EXPECT_EQ(rows, 97);
}

TEST_F(CheckpointTest, ATaskThatEndedBeforeTheBarrierAcksAsFinishedAndRestoresAsEnded) {
  // Source task 2 of 3 has no rows: it ends at once, before any barrier. Its channels into the
  // sums end (and count as aligned); it acks every checkpoint as finished, and the restart
  // restores it as ended.
  constexpr int64_t kRows = 20'000;
  auto script = std::make_shared<Script>();
  script->failures_left = 1;
  script->after_rows = 200;
  auto collected = std::make_shared<CollectedOutput>();
  ASSERT_OK_AND_ASSIGN(JobReport report,
                       RunSumJob(kRows, Checkpoints(3), script, collected,
                                 ShuffleMode::kPipelined, /*source_tasks=*/3,
                                 /*empty_subtask=*/2));
  EXPECT_EQ(report.checkpoints.restarts, 1);
  EXPECT_GT(report.checkpoints.restored_from, 0);
  ASSERT_OK_AND_ASSIGN(auto out, collected->Table("out"));
  int64_t rows = 0;
  EXPECT_EQ(SumsOf(out, &rows), ReferenceSums(kRows));
  EXPECT_EQ(rows, 97);
  ASSERT_OK_AND_ASSIGN(auto storage, CheckpointStorage::Open(dir_.string(), "job", 2));
  ASSERT_OK_AND_ASSIGN(auto latest, storage->LatestValid());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->tasks.size(), 7u);  // 3 sources, 3 sums, 1 sink
  int32_t finished_sources = 0;
  for (const TaskSnapshot& task : latest->tasks) {
    if (task.finished) {
      EXPECT_TRUE(task.files.empty());
      finished_sources += task.chain == 0 ? 1 : 0;
    }
  }
  EXPECT_GE(finished_sources, 1);
}

TEST_F(CheckpointTest, RestartsAreBoundedAndTheFailureNamesCauseAndAttempts) {
  auto script = std::make_shared<Script>();
  script->failures_left = 100;  // fails every attempt
  script->after_rows = 1;
  auto collected = std::make_shared<CollectedOutput>();
  auto report = RunSumJob(20'000, Checkpoints(2), script, collected);
  ASSERT_FALSE(report.ok());
  const std::string message = report.status().message();
  EXPECT_NE(message.find("injected failure"), std::string::npos) << message;
  EXPECT_NE(message.find("gave up after 2 restarts"), std::string::npos) << message;
  EXPECT_NE(message.find("attempt 1:"), std::string::npos) << message;
  // Each of the three attempts failed (two sum tasks of one attempt may both fail).
  EXPECT_GE(script->failures_injected.load(), 3);
  ASSERT_OK_AND_ASSIGN(auto out, collected->Table("out"));
  EXPECT_EQ(out->num_rows(), 0);  // nothing published
}

TEST_F(CheckpointTest, WithoutCheckpointsAFailureFailsTheJobAndNothingIsWritten) {
  auto script = std::make_shared<Script>();
  script->failures_left = 1;
  script->without_completion = true;
  script->after_rows = 100;
  script->completions = 1;  // the sources do not wait for a checkpoint
  auto collected = std::make_shared<CollectedOutput>();
  auto report = RunSumJob(2'000, std::nullopt, script, collected);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("injected failure"), std::string::npos)
      << report.status();
  EXPECT_EQ(script->failures_injected.load(), 1);
  EXPECT_FALSE(fs::exists(dir_));
  // And without a failure, checkpoints off report none.
  auto clean = std::make_shared<Script>();
  clean->failures_left = 0;
  clean->completions = 1;
  ASSERT_OK_AND_ASSIGN(auto ok, RunSumJob(2'000, std::nullopt, clean,
                                          std::make_shared<CollectedOutput>()));
  EXPECT_EQ(ok.checkpoints.completed, 0);
  EXPECT_EQ(ok.checkpoints.restarts, 0);
}

TEST_F(CheckpointTest, BlockingEdgesAreRefusedUnderCheckpoints) {
  auto script = std::make_shared<Script>();
  auto report = RunSumJob(1'000, Checkpoints(1), script, std::make_shared<CollectedOutput>(),
                          ShuffleMode::kBlocking);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("pipelined"), std::string::npos)
      << report.status();
  // Refused before any task ran, and not retried.
  EXPECT_EQ(report.status().message().find("gave up"), std::string::npos) << report.status();
}

// The seed pipeline's shape with the real operators: generated transactions with event time
// (rate-limited), keyed by user, tumbling 1 s windows (count, min, max), a collect sink;
// checkpoints every 100 ms and one injected task failure in the windowed aggregate. The output
// equals the failure-free run's. Needs the generator source's Snapshot/Restore (branch
// h-ckptio) and the windowed aggregate's (branch h-state): skipped until both are merged.
TEST_F(CheckpointTest, WindowedAggregateRecoversToTheFailureFreeOutput) {
  OperatorId agg_id = -1;
  auto run = [&](bool checkpoints, std::shared_ptr<Script> script)
      -> arrow::Result<std::pair<JobReport, std::shared_ptr<arrow::Table>>> {
    GeneratorSourceParams source;
    source.table = GeneratorTable::kTransactions;
    source.rows = 40'000;
    source.batch_rows = 500;
    source.key_cardinality = 50;
    source.rows_per_second = 80'000;
    // Out-of-orderness above the generator's disorder: no row is late, so the windows' contents
    // do not depend on how the two source tasks interleave.
    source.event_time = EventTimeSpec{"event_time", milliseconds(2500)};
    WindowParams window;
    window.type = WindowType::kTumbling;
    window.size = milliseconds(1000);
    PlanBuilder b;
    PlanOptions plan_options;
    if (checkpoints) {
      plan_options.checkpoint = Checkpoints(3);
      plan_options.checkpoint.interval = milliseconds(100);
    }
    b.SetOptions(plan_options);
    b.Source(source, 2, "transactions")
        .KeyBy({"user_id"})
        .Window(window, 2, "window")
        // Order-independent aggregates: a float sum would differ in its last bits.
        .Aggregate({AggregateSpec{AggregateFunction::kCount, "", "n"},
                    AggregateSpec{AggregateFunction::kMin, "amount", "low"},
                    AggregateSpec{AggregateFunction::kMax, "amount", "high"}},
                   2, "agg")
        .Sink(CollectSinkParams{}, 1, "out");
    ARROW_ASSIGN_OR_RAISE(auto plan, b.Build());
    auto collected = std::make_shared<CollectedOutput>();
    LocalExecutorOptions options;
    options.threads = 2;
    options.collected = collected;
    ARROW_ASSIGN_OR_RAISE(auto bound, BindJob(plan, BindOptionsOf(options), options.shuffle));
    auto job = std::make_shared<BoundJob>(*bound);
    for (auto& [id, op] : job->operators) {
      const std::string& name = plan.FindOperator(id)->name;
      if (name == "agg") {
        agg_id = id;
        auto make = op.make_operator;
        op.make_operator = [make, script](const TaskContext& context)
            -> arrow::Result<std::unique_ptr<Operator>> {
          ARROW_ASSIGN_OR_RAISE(auto inner, make(context));
          return std::make_unique<FailOnce>(std::move(inner), script);
        };
      } else if (name == "transactions") {
        auto make = op.make_source;
        op.make_source = [make, script](const TaskContext& context)
            -> arrow::Result<std::unique_ptr<SourceReader>> {
          ARROW_ASSIGN_OR_RAISE(auto inner, make(context));
          return std::make_unique<CountingRestores>(std::move(inner), script);
        };
      }
    }
    ARROW_ASSIGN_OR_RAISE(JobReport report, RunBoundJob(job, options));
    ARROW_ASSIGN_OR_RAISE(auto out, collected->Table("out"));
    return std::make_pair(std::move(report), std::move(out));
  };
  auto reference_script = std::make_shared<Script>();
  reference_script->failures_left = 0;
  ASSERT_OK_AND_ASSIGN(auto reference, run(false, reference_script));

  auto script = std::make_shared<Script>();
  script->failures_left = 1;
  script->after_rows = 2'000;
  auto recovered = run(true, script);
  if (!recovered.ok() && recovered.status().IsNotImplemented()) {
    GTEST_SKIP() << "needs the operators' and sources' Snapshot/Restore (branches h-state and "
                    "h-ckptio): "
                 << recovered.status().ToString();
  }
  ASSERT_OK(recovered.status());
  EXPECT_GE(recovered->first.checkpoints.completed, 1);
  {
    // The windowed aggregate's default Snapshot puts nothing: until its state is snapshotted
    // (branch h-state) a restart loses its windows.
    ASSERT_OK_AND_ASSIGN(auto storage, CheckpointStorage::Open(dir_.string(), "job", 2));
    ASSERT_OK_AND_ASSIGN(auto latest, storage->LatestValid());
    ASSERT_TRUE(latest.has_value());
    bool agg_state = false;
    for (const TaskSnapshot& task : latest->tasks) {
      for (const SnapshotFile& file : task.files) {
        agg_state = agg_state || file.path.find("/" + std::to_string(agg_id) + "-") !=
                                     std::string::npos;
      }
    }
    if (!agg_state) {
      GTEST_SKIP() << "the windowed aggregate puts no state into its snapshot yet (branch "
                      "h-state)";
    }
  }
  // The failure comes after a completed checkpoint only if the job outlived one: when it did,
  // the run restarted once and restored its sources.
  EXPECT_EQ(script->failures_injected.load(), recovered->first.checkpoints.restarts);
  auto sort = [](const std::shared_ptr<arrow::Table>& table) {
    std::vector<cp::SortKey> keys;
    for (const auto& field : table->schema()->fields()) keys.emplace_back(field->name());
    auto indices = cp::SortIndices(arrow::Datum(table), cp::SortOptions(keys)).ValueOrDie();
    return cp::Take(arrow::Datum(table), arrow::Datum(indices))
        .ValueOrDie()
        .table()
        ->CombineChunks()
        .ValueOrDie();
  };
  auto expected = sort(reference.second);
  auto got = sort(recovered->second);
  EXPECT_EQ(got->num_rows(), expected->num_rows());
  EXPECT_TRUE(got->Equals(*expected)) << "recovered:\n"
                                      << got->ToString().substr(0, 2000) << "\nexpected:\n"
                                      << expected->ToString().substr(0, 2000);
}

// A checkpoint given up (a sink task ended first, the usual end of a bounded job) is removed only
// once every task's snapshot of it was written: a write still in flight when Abort ran used to
// recreate the checkpoint's directory, leaving a checkpoint without manifest after the job.
TEST_F(CheckpointTest, AGivenUpCheckpointLeavesNoFilesBehind) {
  PlanBuilder b;
  PlanOptions plan_options;
  plan_options.checkpoint = Checkpoints(0);
  plan_options.checkpoint.interval = milliseconds(1);
  b.SetOptions(plan_options);
  // Paced, so that checkpoints are taken while the four sink tasks end one after the other.
  b.Source(GeneratorSourceParams{.rows = 400'000, .batch_rows = 1000, .rows_per_second = 2e6}, 4,
           "source")
      .Sink(FileSinkParams{.directory = (dir_ / "out").string()}, 4, "out");
  ASSERT_OK_AND_ASSIGN(auto plan, b.Build());
  for (int run = 0; run < 20; ++run) {
    ASSERT_OK(RunLocalJob(plan, LocalExecutorOptions{}).status());
    ASSERT_OK_AND_ASSIGN(auto storage, CheckpointStorage::Open(dir_.string(), "job", 2));
    ASSERT_OK_AND_ASSIGN(auto ids, storage->ListCheckpoints());
    for (CheckpointId id : ids) {
      const arrow::Status verified = storage->Verify(id);
      EXPECT_TRUE(verified.ok()) << "run " << run << ": checkpoint " << id
                                 << " left behind: " << verified.ToString();
    }
  }
}

}  // namespace
}  // namespace sabot
