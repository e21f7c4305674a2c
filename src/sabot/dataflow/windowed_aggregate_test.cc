#include "sabot/dataflow/windowed_aggregate.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include <arrow/builder.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <gtest/gtest.h>

#include "sabot/dataflow/operator_testing.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/dataflow/state_testing.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::milliseconds;

// One input row: user_id (null when nullopt), amount, event time (ms).
struct Row {
  std::optional<int64_t> user;
  double amount = 0;
  std::optional<int64_t> t;
};

// event_time is a timestamp of `unit` (Row::t is in that unit).
std::shared_ptr<arrow::Schema> InputSchema(arrow::TimeUnit::type unit = arrow::TimeUnit::MILLI) {
  return arrow::schema({arrow::field("user_id", arrow::int64()),
                        arrow::field("amount", arrow::float64()),
                        arrow::field("event_time", arrow::timestamp(unit))});
}

std::shared_ptr<arrow::RecordBatch> Batch(const std::vector<Row>& rows,
                                          arrow::TimeUnit::type unit = arrow::TimeUnit::MILLI) {
  arrow::Int64Builder users;
  arrow::DoubleBuilder amounts;
  arrow::TimestampBuilder times(arrow::timestamp(unit), arrow::default_memory_pool());
  for (const Row& r : rows) {
    EXPECT_TRUE((r.user ? users.Append(*r.user) : users.AppendNull()).ok());
    EXPECT_TRUE(amounts.Append(r.amount).ok());
    EXPECT_TRUE((r.t ? times.Append(*r.t) : times.AppendNull()).ok());
  }
  return arrow::RecordBatch::Make(InputSchema(unit), static_cast<int64_t>(rows.size()),
                                  {users.Finish().ValueOrDie(), amounts.Finish().ValueOrDie(),
                                   times.Finish().ValueOrDie()});
}

using Collect = testing::CollectingOutput;

// An output row's aggregates: sum, count, min, max, mean of amount.
struct Aggregates {
  double sum = 0;
  int64_t count = 0;
  double min = 0;
  double max = 0;
  double mean = 0;
};
using WindowKey = std::tuple<std::optional<int64_t>, int64_t, int64_t>;  // user, start, end

// Output rows by (user, window_start, window_end); a later row for the same key replaces an
// earlier one (the last row per key and window is final). `emitted` counts every row. The
// window's columns must be timestamps of `unit`.
std::map<WindowKey, Aggregates> Results(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                                        int64_t* emitted = nullptr,
                                        arrow::TimeUnit::type unit = arrow::TimeUnit::MILLI) {
  std::map<WindowKey, Aggregates> out;
  if (emitted) *emitted = 0;
  for (const auto& batch : batches) {
    EXPECT_EQ(batch->schema()->field(0)->name(), "user_id");
    EXPECT_EQ(batch->schema()->field(1)->name(), "window_start");
    EXPECT_EQ(batch->schema()->field(2)->name(), "window_end");
    EXPECT_TRUE(batch->schema()->field(1)->type()->Equals(arrow::timestamp(unit)));
    EXPECT_TRUE(batch->schema()->field(2)->type()->Equals(arrow::timestamp(unit)));
    const auto& user = static_cast<const arrow::Int64Array&>(*batch->column(0));
    const auto& start = static_cast<const arrow::TimestampArray&>(*batch->column(1));
    const auto& end = static_cast<const arrow::TimestampArray&>(*batch->column(2));
    const auto& sum = static_cast<const arrow::DoubleArray&>(*batch->GetColumnByName("sum_amount"));
    const auto& count = static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("count"));
    const auto& min = static_cast<const arrow::DoubleArray&>(*batch->GetColumnByName("min_amount"));
    const auto& max = static_cast<const arrow::DoubleArray&>(*batch->GetColumnByName("max_amount"));
    const auto& mean = static_cast<const arrow::DoubleArray&>(*batch->GetColumnByName("mean_amount"));
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      WindowKey key{user.IsNull(i) ? std::nullopt : std::optional<int64_t>(user.Value(i)),
                    start.Value(i), end.Value(i)};
      out[key] = Aggregates{sum.Value(i), count.Value(i), min.Value(i), max.Value(i), mean.Value(i)};
      if (emitted) ++*emitted;
    }
  }
  return out;
}

// The reference: every row in every window [start, start + size) with start a multiple of
// `slide` that contains its time.
std::map<WindowKey, Aggregates> Reference(const std::vector<Row>& rows, int64_t size, int64_t slide) {
  std::map<WindowKey, std::vector<double>> values;
  for (const Row& r : rows) {
    for (int64_t start = (*r.t / slide) * slide; start > *r.t - size; start -= slide) {
      values[{r.user, start, start + size}].push_back(r.amount);
    }
  }
  std::map<WindowKey, Aggregates> out;
  for (const auto& [key, v] : values) {
    Aggregates a;
    a.count = static_cast<int64_t>(v.size());
    a.min = *std::min_element(v.begin(), v.end());
    a.max = *std::max_element(v.begin(), v.end());
    for (double x : v) a.sum += x;
    a.mean = a.sum / static_cast<double>(a.count);
    out[key] = a;
  }
  return out;
}

// Sessions per user: rows closer than `gap` form one session [first, last + gap).
std::map<WindowKey, Aggregates> SessionReference(std::vector<Row> rows, int64_t gap) {
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.user, *a.t) < std::tie(b.user, *b.t);
  });
  std::map<WindowKey, Aggregates> out;
  for (size_t first = 0; first < rows.size();) {
    size_t last = first;
    while (last + 1 < rows.size() && rows[last + 1].user == rows[first].user &&
           *rows[last + 1].t - *rows[last].t < gap) {
      ++last;
    }
    Aggregates a;
    a.min = a.max = rows[first].amount;
    for (size_t i = first; i <= last; ++i) {
      a.sum += rows[i].amount;
      a.min = std::min(a.min, rows[i].amount);
      a.max = std::max(a.max, rows[i].amount);
      ++a.count;
    }
    a.mean = a.sum / static_cast<double>(a.count);
    out[{rows[first].user, *rows[first].t, *rows[last].t + gap}] = a;
    first = last + 1;
  }
  return out;
}

void ExpectEqual(const std::map<WindowKey, Aggregates>& got,
                 const std::map<WindowKey, Aggregates>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, a] : want) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << "window [" << std::get<1>(key) << ", " << std::get<2>(key)
                             << ") of user " << (std::get<0>(key) ? *std::get<0>(key) : -1);
    EXPECT_DOUBLE_EQ(it->second.sum, a.sum);
    EXPECT_EQ(it->second.count, a.count);
    EXPECT_DOUBLE_EQ(it->second.min, a.min);
    EXPECT_DOUBLE_EQ(it->second.max, a.max);
    EXPECT_NEAR(it->second.mean, a.mean, 1e-9 * std::abs(a.mean));
  }
}

AggregateParams AllAggregates() {
  return AggregateParams{{Sum("amount"), Count(), Min("amount"), Max("amount"), Mean("amount")}};
}

OperatorPlanContext Context() {
  OperatorPlanContext context;
  context.input_keys = {"user_id"};
  context.sources_event_time = {{"source", "event_time"}};
  return context;
}

// A bound windowed aggregate's task instance (subtask 0 of 1).
struct Harness {
  explicit Harness(WindowParams params, std::string job_id = "job",
                   arrow::TimeUnit::type time_unit = arrow::TimeUnit::MILLI,
                   int64_t state_budget = 0, AggregateParams aggregates = AllAggregates())
      : unit(time_unit) {
    window.name = "window";
    window.params = std::move(params);
    aggregate.name = "agg";
    aggregate.params = std::move(aggregates);
    OperatorPlanContext context = Context();
    context.input_window = &window;
    BindOptions options;
    options.job_id = job_id;
    auto bound = BindOperator(aggregate, {InputSchema(unit)}, options, context);
    EXPECT_TRUE(bound.ok()) << bound.status().ToString();
    TaskContext task;
    task.job_id = job_id;
    task.spec = &aggregate;
    task.state_budget_bytes = state_budget;
    auto made = bound->make_operator(task);
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    op = std::move(*made);
  }
  void Feed(const std::vector<Row>& rows) { ASSERT_OK(op->Process(0, Batch(rows, unit), &out)); }
  void Watermark(WatermarkMs w) { ASSERT_OK(op->OnWatermark(w, &out)); }
  void End() {
    ASSERT_OK(op->OnWatermark(kEndOfTimeWatermark, &out));
    ASSERT_OK(op->Finish(&out));
  }

  arrow::TimeUnit::type unit;
  OperatorSpec window;
  OperatorSpec aggregate;
  std::unique_ptr<Operator> op;
  Collect out;
};

// Rows of `users` users (one null) over `span` ms, in time order, then shuffled within
// `disorder` ms (each row stays at most `disorder` behind the largest time before it).
std::vector<Row> Transactions(int n, int64_t span, int64_t disorder, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<Row> rows;
  for (int i = 0; i < n; ++i) {
    Row r;
    const int u = static_cast<int>(random() % 6);
    if (u != 5) r.user = u;
    r.amount = static_cast<double>(random() % 1000) / 4;
    r.t = int64_t{1'700'000'000'000} + span * i / n;
    rows.push_back(r);
  }
  if (disorder > 0) {
    // Swap neighbours whose times differ by less than the bound.
    for (int pass = 0; pass < 3; ++pass) {
      for (size_t i = 1; i < rows.size(); ++i) {
        if (random() % 2 == 0 && *rows[i].t - *rows[i - 1].t < disorder / 3) {
          std::swap(rows[i], rows[i - 1]);
        }
      }
    }
  }
  return rows;
}

// Feeds `rows` in batches of `batch`, each followed by the watermark a source with bound
// `disorder` would send (largest time so far - disorder); then ends.
void FeedAll(Harness* h, const std::vector<Row>& rows, size_t batch, int64_t disorder) {
  int64_t largest = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < rows.size(); i += batch) {
    std::vector<Row> part(rows.begin() + i, rows.begin() + std::min(rows.size(), i + batch));
    h->Feed(part);
    for (const Row& r : part) largest = std::max(largest, *r.t);
    h->Watermark(largest - disorder);
  }
  h->End();
}

TEST(WindowedAggregateTest, TumblingEqualsTheReferenceInOrderAndWithinTheBound) {
  for (int64_t disorder : {int64_t{0}, int64_t{20'000}}) {
    SCOPED_TRACE(disorder);
    std::vector<Row> rows = Transactions(3000, 600'000, disorder, 7);
    Harness h(Tumbling(milliseconds(60'000)));
    FeedAll(&h, rows, 97, disorder);
    EXPECT_EQ(h.op->late_rows(), 0);
    int64_t emitted = 0;
    ExpectEqual(Results(h.out.batches, &emitted), Reference(rows, 60'000, 60'000));
    // Without allowed lateness every (key, window) is emitted exactly once.
    EXPECT_EQ(emitted, static_cast<int64_t>(Reference(rows, 60'000, 60'000).size()));
    EXPECT_EQ(h.op->rows_in(), 3000);
    EXPECT_EQ(h.op->rows_out(), emitted);
  }
}

TEST(WindowedAggregateTest, StateWithinTheBudgetGivesTheReference) {
  std::vector<Row> rows = Transactions(3000, 600'000, 20'000, 7);
  Harness h(Tumbling(milliseconds(60'000)), "job", arrow::TimeUnit::MILLI, 64 << 20);
  FeedAll(&h, rows, 97, 20'000);
  ExpectEqual(Results(h.out.batches), Reference(rows, 60'000, 60'000));
}

// Past the state budget window state spills to disk (open windows' new keys, rows kept for
// allowed lateness, buffered session rows), partitioned by key hash, and is merged back when the
// windows fire: under a budget far below what the task holds, the results are the reference's,
// the task reports the bytes it spilled, and nothing is late.
TEST(WindowedAggregateTest, StatePastTheBudgetSpillsAndGivesTheReference) {
  struct Case {
    const char* name;
    WindowParams params;
    int64_t size;
    int64_t slide;
    int64_t watermark_bound;  // FeedAll's: below the rows' disorder with allowed lateness
  };
  WindowParams late = Tumbling(milliseconds(60'000));
  late.allowed_lateness = milliseconds(40'000);
  const Case cases[] = {
      {"tumbling", Tumbling(milliseconds(60'000)), 60'000, 60'000, 20'000},
      {"sliding", Sliding(milliseconds(50'000), milliseconds(20'000)), 50'000, 20'000, 20'000},
      {"tumbling with allowed lateness", late, 60'000, 60'000, 1'000},
      {"session", Session(milliseconds(2'000)), 0, 0, 20'000}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Row> rows = Transactions(4000, 900'000, 20'000, 3);
    std::mt19937 random(17);
    for (Row& r : rows) {
      if (r.user) r.user = static_cast<int64_t>(random() % 400);  // many keys
    }
    Harness h(c.params, "job", arrow::TimeUnit::MILLI, 1024);
    FeedAll(&h, rows, 100, c.watermark_bound);
    EXPECT_EQ(h.op->late_rows(), 0);
    EXPECT_GT(h.op->state_spilled_bytes(), 0);
    if (c.size == 0) {
      ExpectEqual(Results(h.out.batches), SessionReference(rows, 2'000));
    } else {
      ExpectEqual(Results(h.out.batches), Reference(rows, c.size, c.slide));
    }
    // The same input without a budget: nothing spilled, the same results.
    Harness unbounded(c.params);
    FeedAll(&unbounded, rows, 100, c.watermark_bound);
    EXPECT_EQ(unbounded.op->state_spilled_bytes(), 0);
    ExpectEqual(Results(h.out.batches), Results(unbounded.out.batches));
  }
}

// Feeds `rows` as FeedAll does; before batch `restart_at` the instance is snapshotted, dropped,
// and a new one restored from the snapshot takes over. The output of both, in order.
std::vector<std::shared_ptr<arrow::RecordBatch>> FeedWithRestart(
    const WindowParams& params, int64_t budget, const std::vector<Row>& rows, size_t batch,
    int64_t disorder, size_t restart_at, int64_t* late_rows) {
  auto h = std::make_unique<Harness>(params, "job", arrow::TimeUnit::MILLI, budget);
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  int64_t largest = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < rows.size(); i += batch) {
    std::vector<Row> part(rows.begin() + i, rows.begin() + std::min(rows.size(), i + batch));
    if (i == restart_at * batch) {
      testing::MemoryState parts;
      EXPECT_OK(h->op->Snapshot(1, &parts));
      const size_t emitted = h->out.batches.size();
      // The instance goes on after a checkpoint: what it put must not change.
      EXPECT_OK(h->op->Process(0, Batch(part), &h->out));
      EXPECT_OK(h->op->OnWatermark(kEndOfTimeWatermark, &h->out));
      EXPECT_TRUE(parts.Unchanged());
      h->op->Abort();
      // Its output after the snapshot is discarded (a restart replays that input).
      out.insert(out.end(), h->out.batches.begin(),
                 h->out.batches.begin() + static_cast<std::ptrdiff_t>(emitted));
      h = std::make_unique<Harness>(params, "job", arrow::TimeUnit::MILLI, budget);
      EXPECT_OK(h->op->Restore(1, &parts));
    }
    h->Feed(part);
    for (const Row& r : part) largest = std::max(largest, *r.t);
    h->Watermark(largest - disorder);
  }
  h->End();
  out.insert(out.end(), h->out.batches.begin(), h->out.batches.end());
  *late_rows = h->op->late_rows();
  return out;
}

// Every output row as text, sorted: two outputs with equal rows (in any order) are equal.
std::vector<std::string> RowsAsText(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  std::vector<std::string> rows;
  for (const auto& batch : batches) {
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      std::string row;
      for (int c = 0; c < batch->num_columns(); ++c) {
        row += batch->column(c)->GetScalar(i).ValueOrDie()->ToString() + "|";
      }
      rows.push_back(std::move(row));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// A windowed aggregate snapshotted mid-stream (open windows' partial state, rows kept for
// allowed lateness, pending re-emissions, session rows, the watermark and the late count; in
// memory or spilled), dropped, and restored into a new instance fed the rest, emits exactly the
// rows of an uninterrupted run.
TEST(WindowedAggregateTest, RestoredFromASnapshotItEmitsWhatAnUninterruptedRunDoes) {
  WindowParams late = Tumbling(milliseconds(60'000));
  late.allowed_lateness = milliseconds(40'000);
  WindowParams sliding_late = Sliding(milliseconds(50'000), milliseconds(20'000));
  sliding_late.allowed_lateness = milliseconds(40'000);
  WindowParams session_late = Session(milliseconds(2'000));
  session_late.allowed_lateness = milliseconds(40'000);
  const std::pair<const char*, WindowParams> cases[] = {
      {"tumbling", Tumbling(milliseconds(60'000))},
      {"sliding", Sliding(milliseconds(50'000), milliseconds(20'000))},
      {"tumbling with allowed lateness", late},
      {"sliding with allowed lateness", sliding_late},
      {"session", Session(milliseconds(2'000))},
      {"session with allowed lateness", session_late}};
  std::vector<Row> rows = Transactions(3000, 900'000, 20'000, 9);
  std::mt19937 random(5);
  for (Row& r : rows) {
    if (r.user) r.user = static_cast<int64_t>(random() % 300);
  }
  rows[1500].t = *rows[1500].t - 200'000;  // a late row, counted before the snapshot
  // Late but within the allowed lateness: a fired window's rows re-emitted, before the snapshot
  // and after it.
  rows[1550].t = *rows[1550].t - 30'000;
  rows[2500].t = *rows[2500].t - 30'000;
  for (const auto& [name, params] : cases) {
    for (int64_t budget : {int64_t{0}, int64_t{1024}}) {
      SCOPED_TRACE(std::string(name) + " budget " + std::to_string(budget));
      Harness whole(params, "job", arrow::TimeUnit::MILLI, budget);
      FeedAll(&whole, rows, 100, 1'000);
      for (size_t at : {size_t{3}, size_t{16}}) {
        int64_t late_rows = -1;
        auto resumed = FeedWithRestart(params, budget, rows, 100, 1'000, at, &late_rows);
        EXPECT_EQ(RowsAsText(resumed), RowsAsText(whole.out.batches))
            << "restart before batch " << at;
        EXPECT_EQ(late_rows, whole.op->late_rows());
      }
    }
  }
}

// count_distinct has no partial form: a snapshot with an open window says so, naming the
// aggregate; with no window open there is nothing to lose and it succeeds.
TEST(WindowedAggregateTest, ASnapshotOfAnAggregateWithoutAPartialFormIsRefused) {
  Harness h(Tumbling(milliseconds(100)), "job", arrow::TimeUnit::MILLI, 0,
            AggregateParams{{Sum("amount"), CountDistinct("amount")}});
  testing::MemoryState empty;
  ASSERT_OK(h.op->Snapshot(1, &empty));
  h.Feed({{1, 1.0, 10}});
  testing::MemoryState parts;
  ASSERT_RAISES_WITH(NotImplemented, "aggregate 'agg' (window 'window') cannot snapshot",
                     h.op->Snapshot(2, &parts));
}

TEST(WindowedAggregateTest, SlidingEqualsTheReference) {
  std::vector<Row> rows = Transactions(2000, 300'000, 9'000, 11);
  Harness h(Sliding(milliseconds(50'000), milliseconds(20'000)));  // size not a multiple
  FeedAll(&h, rows, 64, 9'000);
  EXPECT_EQ(h.op->late_rows(), 0);
  ExpectEqual(Results(h.out.batches), Reference(rows, 50'000, 20'000));
}

TEST(WindowedAggregateTest, AWindowFiresWhenTheWatermarkReachesItsEnd) {
  Harness h(Tumbling(milliseconds(100)));
  h.Feed({{1, 1.0, 10}, {1, 2.0, 99}, {2, 5.0, 100}, {std::nullopt, 7.0, 150}});
  h.Watermark(99);
  EXPECT_TRUE(h.out.batches.empty());  // [0, 100) may still get rows with time 99
  h.Watermark(100);
  auto fired = Results(h.out.batches);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired.begin()->first, (WindowKey{1, 0, 100}));
  EXPECT_DOUBLE_EQ(fired.begin()->second.sum, 3.0);
  EXPECT_EQ(h.out.watermarks, (std::vector<WatermarkMs>{99, 100}));
  h.End();
  auto all = Results(h.out.batches);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all.count(WindowKey{std::nullopt, 100, 200}), 1u);  // null is a key of its own
}

TEST(WindowedAggregateTest, LateRowsAreCountedAndWrittenToTheLateOutput) {
  const auto directory = std::filesystem::temp_directory_path() / "sabot_windowed_late_test";
  std::filesystem::remove_all(directory);
  WindowParams params = Tumbling(milliseconds(100));
  params.late_output = LateOutputSpec{FileFormat::kIpc, directory.string(), {}};
  Harness h(params, "late-job");
  h.Feed({{1, 1.0, 10}, {2, 2.0, 120}});
  h.Watermark(100);                                           // [0, 100) fired and gone
  h.Feed({{1, 4.0, 50}, {3, 8.0, 130}, {2, 16.0, std::nullopt}});  // late, on time, no time
  EXPECT_EQ(h.op->late_rows(), 2);
  h.End();
  ASSERT_OK(h.op->Commit());
  auto results = Results(h.out.batches);
  EXPECT_DOUBLE_EQ(results.at(WindowKey{1, 0, 100}).sum, 1.0);  // the late row changed nothing
  EXPECT_EQ(results.size(), 3u);
  // The late rows, as they arrived, in the committed part file.
  ASSERT_OK_AND_ASSIGN(auto file, arrow::io::ReadableFile::Open((directory / "part-0.arrow").string()));
  ASSERT_OK_AND_ASSIGN(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  ASSERT_OK_AND_ASSIGN(auto late, reader->ToTable());
  ASSERT_EQ(late->num_rows(), 2);
  EXPECT_TRUE(late->schema()->Equals(*InputSchema()));
  ASSERT_OK_AND_ASSIGN(auto combined, late->CombineChunksToBatch());
  EXPECT_TRUE(combined->Equals(*Batch({{1, 4.0, 50}, {2, 16.0, std::nullopt}}))) << combined->ToString();
  std::filesystem::remove_all(directory);
}

TEST(WindowedAggregateTest, ASlidingRowIsInAllItsWindowsOrLate) {
  Harness h(Sliding(milliseconds(100), milliseconds(50)));
  h.Feed({{1, 1.0, 60}, {1, 2.0, 140}});
  h.Watermark(150);  // [50, 150) fired; [100, 200) open
  h.Feed({{1, 4.0, 120}});  // in [50, 150), closed, and [100, 200), open: late for both
  EXPECT_EQ(h.op->late_rows(), 1);
  h.End();
  auto results = Results(h.out.batches);
  EXPECT_DOUBLE_EQ(results.at(WindowKey{1, 50, 150}).sum, 3.0);
  EXPECT_DOUBLE_EQ(results.at(WindowKey{1, 100, 200}).sum, 2.0);
}

TEST(WindowedAggregateTest, AllowedLatenessReEmitsTheUpdatedRowOfTheKeyOnly) {
  WindowParams params = Tumbling(milliseconds(100));
  params.allowed_lateness = milliseconds(50);
  Harness h(params);
  h.Feed({{1, 1.0, 10}, {2, 2.0, 20}});
  h.Watermark(100);
  ASSERT_EQ(Results(h.out.batches).size(), 2u);  // fired, kept until 150
  h.out.batches.clear();
  h.Feed({{1, 4.0, 30}});  // late but allowed
  EXPECT_EQ(h.op->late_rows(), 0);
  h.Watermark(120);
  auto update = Results(h.out.batches);
  ASSERT_EQ(update.size(), 1u);  // user 1's row only
  EXPECT_DOUBLE_EQ(update.at(WindowKey{1, 0, 100}).sum, 5.0);
  EXPECT_EQ(update.at(WindowKey{1, 0, 100}).count, 2);
  h.Watermark(150);  // dropped now
  h.Feed({{2, 8.0, 40}});
  EXPECT_EQ(h.op->late_rows(), 1);
  h.End();
  EXPECT_EQ(Results(h.out.batches).size(), 1u);
}

TEST(WindowedAggregateTest, SessionsMergeWhenARowBridgesThem) {
  Harness h(Session(milliseconds(10)));
  h.Feed({{1, 1.0, 0}, {1, 2.0, 25}, {2, 3.0, 3}, {std::nullopt, 4.0, 5}});
  h.Watermark(12);  // user 2's session [3, 13) not ended yet; user 1's [0, 10) ended
  auto first = Results(h.out.batches);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first.count(WindowKey{1, 0, 10}), 1u);
  EXPECT_EQ(first.count(WindowKey{std::nullopt, 5, 15}), 0u);
  h.Feed({{1, 8.0, 32}, {1, 16.0, 41}, {2, 0.5, 12}});  // 2: extends to [3, 22)
  h.End();
  ExpectEqual(Results(h.out.batches),
              SessionReference({{1, 1.0, 0}, {1, 2.0, 25}, {2, 3.0, 3}, {std::nullopt, 4.0, 5},
                                {1, 8.0, 32}, {1, 16.0, 41}, {2, 0.5, 12}},
                               10));
}

TEST(WindowedAggregateTest, SessionsEqualTheReference) {
  std::vector<Row> rows = Transactions(2500, 2'000'000, 6'000, 5);
  // Gaps: thin the rows of some stretches so sessions end.
  std::vector<Row> thinned;
  for (const Row& r : rows) {
    if ((*r.t / 100'000) % 3 != 1 || !r.user || *r.user % 2 == 0) thinned.push_back(r);
  }
  Harness h(Session(milliseconds(5'000)));
  FeedAll(&h, thinned, 50, 6'000);
  EXPECT_EQ(h.op->late_rows(), 0);
  ExpectEqual(Results(h.out.batches), SessionReference(thinned, 5'000));
}

// Sessions compare event times in the column's own unit: 900 us and 5.000100 s are 4.9992 s
// apart, less than the 5 s gap, so they form one session [900 us, 10.000100 s) (flooring to ms
// made them 5 s apart: two sessions). Rows exactly `gap` apart are two sessions.
TEST(WindowedAggregateTest, SessionsCompareTimesInTheColumnsUnit) {
  for (auto [unit, per_us] : {std::pair{arrow::TimeUnit::MICRO, int64_t{1}},
                              std::pair{arrow::TimeUnit::NANO, int64_t{1000}}}) {
    SCOPED_TRACE(per_us);
    Harness h(Session(milliseconds(5'000)), "job", unit);
    const int64_t s = 1'000'000 * per_us;
    h.Feed({{1, 1.0, 900 * per_us}, {2, 4.0, -1}, {2, 8.0, 5 * s - 2}, {3, 16.0, 0},
            {3, 32.0, 5 * s}});
    h.Watermark(4'999);  // no session has ended
    EXPECT_TRUE(h.out.batches.empty());
    h.Feed({{1, 2.0, 5 * s + 100 * per_us}});
    h.Watermark(10'000);  // 10 s: user 1's session [900 us, 10.0001 s) is still open
    auto fired = Results(h.out.batches, nullptr, unit);
    EXPECT_EQ(fired.count(WindowKey{1, 900 * per_us, 10 * s + 100 * per_us}), 0u);
    EXPECT_EQ(fired.count(WindowKey{2, -1, 10 * s - 2}), 1u);
    h.End();
    auto all = Results(h.out.batches, nullptr, unit);
    ASSERT_EQ(all.size(), 4u);
    EXPECT_EQ(all.at(WindowKey{1, 900 * per_us, 10 * s + 100 * per_us}).count, 2);
    EXPECT_EQ(all.at(WindowKey{2, -1, 10 * s - 2}).count, 2);
    EXPECT_EQ(all.at(WindowKey{3, 0, 5 * s}).count, 1);
    EXPECT_EQ(all.at(WindowKey{3, 5 * s, 10 * s}).count, 1);
    EXPECT_EQ(h.op->late_rows(), 0);
  }
}

// Tumbling and sliding windows of a microsecond column are multiples of their size (slide) in
// microseconds since the epoch, floored for times before 1970, and fire when the watermark (ms)
// reaches their end.
TEST(WindowedAggregateTest, WindowsOfAMicrosecondColumnFloorInItsUnit) {
  const auto us = arrow::TimeUnit::MICRO;
  Harness tumbling(Tumbling(milliseconds(1)), "job", us);
  tumbling.Feed({{1, 1.0, -1}, {1, 2.0, -1000}, {1, 4.0, -1001}, {1, 8.0, 999}, {1, 16.0, 1000}});
  tumbling.Watermark(0);
  auto fired = Results(tumbling.out.batches, nullptr, us);
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_DOUBLE_EQ(fired.at(WindowKey{1, -2000, -1000}).sum, 4.0);
  EXPECT_DOUBLE_EQ(fired.at(WindowKey{1, -1000, 0}).sum, 3.0);
  tumbling.End();
  auto all = Results(tumbling.out.batches, nullptr, us);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_DOUBLE_EQ(all.at(WindowKey{1, 0, 1000}).sum, 8.0);
  EXPECT_DOUBLE_EQ(all.at(WindowKey{1, 1000, 2000}).sum, 16.0);

  Harness sliding(Sliding(milliseconds(2), milliseconds(1)), "job", us);
  sliding.Feed({{1, 1.0, -1}, {1, 2.0, 1500}});
  sliding.End();
  auto hops = Results(sliding.out.batches, nullptr, us);
  ASSERT_EQ(hops.size(), 4u);
  EXPECT_DOUBLE_EQ(hops.at(WindowKey{1, -2000, 0}).sum, 1.0);
  EXPECT_DOUBLE_EQ(hops.at(WindowKey{1, -1000, 1000}).sum, 1.0);
  EXPECT_DOUBLE_EQ(hops.at(WindowKey{1, 0, 2000}).sum, 2.0);
  EXPECT_DOUBLE_EQ(hops.at(WindowKey{1, 1000, 3000}).sum, 2.0);
}

TEST(WindowedAggregateTest, ProcessingTimeWindowsFireByTimer) {
  WindowParams params = Tumbling(milliseconds(40));
  params.time = TimeDomain::kProcessingTime;
  Harness h(params);
  EXPECT_FALSE(h.op->NextTimer().has_value());
  h.Feed({{1, 1.0, std::nullopt}, {1, 2.0, 5}});  // event time is not read
  auto timer = h.op->NextTimer();
  ASSERT_TRUE(timer.has_value());
  std::this_thread::sleep_until(*timer + milliseconds(1));
  ASSERT_OK(h.op->OnTimer(&h.out));
  auto fired = Results(h.out.batches);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired.begin()->second.count, 2);
  EXPECT_EQ(std::get<2>(fired.begin()->first) - std::get<1>(fired.begin()->first), 40);
  EXPECT_FALSE(h.op->NextTimer().has_value());
  h.Feed({{2, 4.0, std::nullopt}});
  h.End();  // the end of input fires what is open
  EXPECT_EQ(Results(h.out.batches).size(), 2u);
  EXPECT_EQ(h.op->late_rows(), 0);
}

// Window spans in a nanosecond column's unit must leave room in int64: a size of 10,000,000 h
// is 3.6e22 ns (window_end used to wrap silently); refused at bind, naming the column's type.
TEST(WindowedAggregateTest, BindingRefusesSpansThatOverflowTheColumnsUnit) {
  const auto ns = InputSchema(arrow::TimeUnit::NANO);
  const auto huge = std::chrono::hours(10'000'000);
  OperatorSpec window{1, "w", 1, Tumbling(huge)};
  ASSERT_RAISES_WITH(Invalid, "operator 'w' (window): its size (36000000000000 ms) is too "
                              "large for its time column 'event_time' (timestamp[ns])",
                     BindOperator(window, {ns}, {}, Context()).status());
  ASSERT_OK(BindOperator(window, {InputSchema()}, {}, Context()).status());  // ms: it fits
  WindowParams session = Session(milliseconds(1'000));
  session.allowed_lateness = std::chrono::hours(1'000'000'000);  // 3.6e18 us
  window.params = session;
  ASSERT_RAISES_WITH(Invalid, "its allowed_lateness (3600000000000000 ms) is too large for "
                              "its time column 'event_time' (timestamp[us])",
                     BindOperator(window, {InputSchema(arrow::TimeUnit::MICRO)}, {}, Context())
                         .status());
  // The aggregate after the window checks the same.
  OperatorSpec aggregate{2, "agg", 1, AllAggregates()};
  window.params = Sliding(huge, milliseconds(1'000));
  OperatorPlanContext context = Context();
  context.input_window = &window;
  ASSERT_RAISES_WITH(Invalid, "window 'w': its size (36000000000000 ms) is too large",
                     BindOperator(aggregate, {ns}, {}, context).status());
}

// A window of an event time at the end of the int64 range would end past it: an error, not a
// wrapped window_end.
TEST(WindowedAggregateTest, WindowsEndingPastTheRangeOfTheColumnAreAnError) {
  const int64_t last = std::numeric_limits<int64_t>::max() - 10;
  for (const WindowParams& params : {Tumbling(milliseconds(3'600'000)),
                                     Sliding(milliseconds(3'600'000), milliseconds(60'000))}) {
    Harness h(params, "job", arrow::TimeUnit::NANO);
    ASSERT_RAISES_WITH(Invalid, "window 'window': the window of event time 9223372036854775797 "
                                "in its time column 'event_time' (timestamp[ns]) would start or "
                                "end outside the range of int64 values",
                       h.op->Process(0, Batch({{1, 1.0, last}}, arrow::TimeUnit::NANO), &h.out));
    EXPECT_TRUE(h.out.batches.empty());
  }
  Harness h(Session(milliseconds(1'000)), "job", arrow::TimeUnit::NANO);
  h.Feed({{1, 1.0, last}});
  ASSERT_RAISES_WITH(Invalid, "the window of event time 9223372036854775797",
                     h.op->OnWatermark(kEndOfTimeWatermark, &h.out));
  EXPECT_TRUE(h.out.batches.empty());
}

TEST(WindowedAggregateTest, BindingChecksTheEventTimeColumn) {
  OperatorSpec window{1, "w", 1, Tumbling(milliseconds(10))};
  OperatorPlanContext context = Context();
  ASSERT_OK(BindOperator(window, {InputSchema()}, {}, context).status());
  // A source without event time: refused when it does not end (it would hold the windows
  // forever), accepted when it is bounded (a lookup table: it holds them until it ends).
  context.sources_event_time = {{"a", "event_time"}, {"b", "", /*bounded=*/false}};
  ASSERT_RAISES_WITH(Invalid, "operator 'w' (window): an event-time window needs every unbounded "
                              "source upstream to declare event_time (its watermarks fire the "
                              "windows), but source 'b' declares none",
                     BindOperator(window, {InputSchema()}, {}, context).status());
  context.sources_event_time = {{"a", "event_time"}, {"b", "", /*bounded=*/true}};
  ASSERT_OK(BindOperator(window, {InputSchema()}, {}, context).status());
  // Only bounded sources without event time: the window's time_column says where time is (the
  // windows fire at the end of input); without one the window has no time at all.
  context.sources_event_time = {{"b", "", /*bounded=*/true}};
  ASSERT_RAISES_WITH(Invalid, "no source upstream declares an event-time column: declare "
                              "event_time",
                     BindOperator(window, {InputSchema()}, {}, context).status());
  std::get<WindowParams>(window.params).time_column = "event_time";
  ASSERT_OK(BindOperator(window, {InputSchema()}, {}, context).status());
  std::get<WindowParams>(window.params).time_column = "";
  context.sources_event_time = {{"a", "event_time"}, {"b", "other"}};
  ASSERT_RAISES_WITH(Invalid, "declare different event-time columns ('a': 'event_time', 'b': 'other')",
                     BindOperator(window, {InputSchema()}, {}, context).status());
  // Naming one of them does not help: the other source's watermarks are on another column.
  std::get<WindowParams>(window.params).time_column = "event_time";
  ASSERT_RAISES_WITH(Invalid, "its time_column 'event_time' is not the event-time column 'other' "
                              "that source 'b' computes its watermarks on",
                     BindOperator(window, {InputSchema()}, {}, context).status());
  // A time_column other than the one the watermarks are computed on (rows would be placed and
  // found late against watermarks of an unrelated time) is refused, naming both columns.
  context = Context();
  std::get<WindowParams>(window.params).time_column = "amount";
  ASSERT_RAISES_WITH(Invalid, "operator 'w' (window): its time_column 'amount' is not the "
                              "event-time column 'event_time' that source 'source' computes its "
                              "watermarks on",
                     BindOperator(window, {InputSchema()}, {}, context).status());
  OperatorSpec aggregate{2, "agg", 1, AllAggregates()};
  OperatorPlanContext after_window = context;
  after_window.input_window = &window;
  ASSERT_RAISES_WITH(Invalid, "window 'w': its time_column 'amount' is not the event-time column "
                              "'event_time'",
                     BindOperator(aggregate, {InputSchema()}, {}, after_window).status());
  std::get<WindowParams>(window.params).time_column = "event_time";  // the same column: fine
  ASSERT_OK(BindOperator(window, {InputSchema()}, {}, context).status());
  std::get<WindowParams>(window.params).time_column = "";
  context.sources_event_time = {{"source", "amount"}};
  ASSERT_RAISES_WITH(TypeError, "event-time column 'amount' has type double",
                     BindOperator(window, {InputSchema()}, {}, context).status());
  context.sources_event_time = {{"source", "nope"}};
  ASSERT_RAISES_WITH(KeyError, "event-time column 'nope' is not a column",
                     BindOperator(window, {InputSchema()}, {}, context).status());
  std::get<WindowParams>(window.params).time = TimeDomain::kProcessingTime;
  ASSERT_OK(BindOperator(window, {InputSchema()}, {}, context).status());
  auto clash = arrow::schema({arrow::field("window_start", arrow::int64())});
  ASSERT_RAISES_WITH(Invalid, "its input has a column named 'window_start'",
                     BindOperator(window, {clash}, {}, context).status());
}

}  // namespace
}  // namespace sabot
