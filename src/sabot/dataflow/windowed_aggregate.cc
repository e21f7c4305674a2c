#include "sabot/dataflow/windowed_aggregate.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>
#include <arrow/compute/exec.h>
#include <arrow/compute/row/grouper.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <arrow/util/byte_size.h>

#include "sabot/dataflow/aggregate_operator.h"
#include "sabot/dataflow/file_sink.h"
#include "sabot/dataflow/grouped_aggregation.h"
#include "sabot/dataflow/state_spill.h"
#include "sabot/dataflow/watermark_generator.h"
#include "sabot/partition/key_hash.h"

namespace sabot {

namespace {

constexpr char kWindowStart[] = "window_start";
constexpr char kWindowEnd[] = "window_end";
// Times are kept in the time column's own unit ("ticks": ms for integer, second and millisecond
// columns, us and ns for micro- and nanosecond timestamps), so no event time is rounded.
constexpr int64_t kEndOfTime = std::numeric_limits<int64_t>::max();

// floor(t / step) * step (step > 0; floored: event times before 1970 are negative) into *out;
// false when it is below the smallest int64.
bool FloorTo(int64_t t, int64_t step, int64_t* out) {
  int64_t rem = t % step;
  if (rem < 0) rem += step;
  return !__builtin_sub_overflow(t, rem, out);
}

// The largest size, slide, gap or allowed lateness in ticks (2^61: about 73 years in
// nanoseconds): any two of them add up without overflow.
constexpr int64_t kMaxSpanTicks = int64_t{1} << 61;

// a + b for b >= 0, saturating at the end of time.
int64_t AddTicks(int64_t a, int64_t b) { return a > kEndOfTime - b ? kEndOfTime : a + b; }

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// How the event-time column's values convert to ticks, how many ticks a millisecond (window
// parameters, watermarks) is, and the type of the window_start / window_end columns (whose
// values are ticks).
struct TimeColumn {
  int index = -1;  // in the input schema; -1 for processing time
  int64_t ticks_per_value = 1;  // 1000 for seconds (window bounds need not be whole seconds)
  int64_t ticks_per_ms = 1;
  std::shared_ptr<arrow::DataType> output_type;
  // For errors: "time column 'event_time' (timestamp[ns])", or "processing time".
  std::string description;
};

// A window's size, slide (= size for tumbling windows), gap and allowed lateness in ticks.
struct WindowSpans {
  int64_t size = 0;
  int64_t slide = 0;
  int64_t gap = 0;
  int64_t lateness = 0;
};

// `params`' spans in `time`'s ticks. Invalid when one exceeds kMaxSpanTicks: window bounds would
// overflow the column's int64 values (a large window over a nanosecond column).
arrow::Result<WindowSpans> SpansInTicks(const WindowParams& params, const TimeColumn& time) {
  WindowSpans spans;
  const std::pair<const char*, std::chrono::milliseconds> given[] = {
      {"size", params.size}, {"slide", params.slide}, {"gap", params.gap},
      {"allowed_lateness", params.allowed_lateness}};
  int64_t* out[] = {&spans.size, &spans.slide, &spans.gap, &spans.lateness};
  for (size_t i = 0; i < 4; ++i) {
    const int64_t ms = given[i].second.count();
    if (__builtin_mul_overflow(ms, time.ticks_per_ms, out[i]) || *out[i] > kMaxSpanTicks) {
      return arrow::Status::Invalid(
          "its ", given[i].first, " (", ms, " ms) is too large for its ", time.description,
          ": window bounds in the column's unit would overflow int64; at most ",
          kMaxSpanTicks / time.ticks_per_ms, " ms (about ",
          kMaxSpanTicks / time.ticks_per_ms / 31'556'952'000, " years) — cast the column to a "
          "coarser unit (project) or use a smaller ", given[i].first);
    }
  }
  if (params.type != WindowType::kSliding) spans.slide = spans.size;
  return spans;
}

arrow::Result<TimeColumn> ResolveTimeColumn(const arrow::Schema& schema,
                                            const std::string& column) {
  TimeColumn time;
  if (column.empty()) {
    time.output_type = arrow::timestamp(arrow::TimeUnit::MILLI);
    time.description = "processing time";
    return time;
  }
  ARROW_ASSIGN_OR_RAISE(time.index, ResolveEventTimeColumn(schema, EventTimeSpec{column, {}}));
  const auto& type = schema.field(time.index)->type();
  time.description = "time column '" + column + "' (" + type->ToString() + ")";
  if (type->id() != arrow::Type::TIMESTAMP) {
    time.output_type = arrow::int64();  // integer milliseconds
    return time;
  }
  const auto& ts = static_cast<const arrow::TimestampType&>(*type);
  switch (ts.unit()) {
    case arrow::TimeUnit::SECOND:
      // Window bounds need not be whole seconds: they are given in milliseconds.
      time.ticks_per_value = 1000;
      time.output_type = arrow::timestamp(arrow::TimeUnit::MILLI, ts.timezone());
      return time;
    case arrow::TimeUnit::MILLI:
      break;
    case arrow::TimeUnit::MICRO:
      time.ticks_per_ms = 1000;
      break;
    case arrow::TimeUnit::NANO:
      time.ticks_per_ms = 1000000;
      break;
  }
  time.output_type = type;
  return time;
}

// The rows' event times in ticks, and which rows have one.
struct EventTimes {
  std::vector<int64_t> ticks;
  std::vector<uint8_t> valid;
  int64_t nulls = 0;
};

arrow::Result<EventTimes> ReadEventTimes(const arrow::RecordBatch& batch, const TimeColumn& time) {
  const std::shared_ptr<arrow::Array>& column = batch.column(time.index);
  std::shared_ptr<arrow::Array> values = column;
  if (column->type_id() == arrow::Type::TIMESTAMP) {
    ARROW_ASSIGN_OR_RAISE(values, column->View(arrow::int64()));
  } else if (column->type_id() != arrow::Type::INT64) {
    ARROW_ASSIGN_OR_RAISE(auto cast, arrow::compute::Cast(*column, arrow::int64()));
    values = cast;
  }
  const auto& ints = static_cast<const arrow::Int64Array&>(*values);
  EventTimes out;
  const int64_t n = ints.length();
  out.ticks.resize(n);
  out.valid.assign(n, 1);
  const int64_t* raw = ints.raw_values();
  if (ints.null_count() > 0) {
    for (int64_t i = 0; i < n; ++i) {
      if (ints.IsNull(i)) {
        out.valid[i] = 0;
        ++out.nulls;
      }
    }
  }
  if (time.ticks_per_value == 1) {
    std::copy(raw, raw + n, out.ticks.begin());
    return out;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (__builtin_mul_overflow(raw[i], time.ticks_per_value, &out.ticks[i]) && out.valid[i]) {
      return arrow::Status::Invalid("event time ", raw[i], " s of row ", i,
                                    " is out of range in milliseconds");
    }
  }
  return out;
}

arrow::Result<std::shared_ptr<arrow::Array>> TimeArray(const std::vector<int64_t>& ticks,
                                                       const TimeColumn& time,
                                                       arrow::MemoryPool* pool) {
  arrow::Int64Builder builder(pool);
  ARROW_RETURN_NOT_OK(builder.AppendValues(ticks));
  ARROW_ASSIGN_OR_RAISE(auto ints, builder.Finish());
  return ints->View(time.output_type);
}

arrow::Result<std::shared_ptr<arrow::Array>> ConstantTime(int64_t ticks, int64_t length,
                                                          const TimeColumn& time,
                                                          arrow::MemoryPool* pool) {
  return TimeArray(std::vector<int64_t>(static_cast<size_t>(length), ticks), time, pool);
}

arrow::Result<std::shared_ptr<arrow::Int64Array>> Indices(const std::vector<int64_t>& rows,
                                                          arrow::MemoryPool* pool) {
  arrow::Int64Builder builder(pool);
  ARROW_RETURN_NOT_OK(builder.AppendValues(rows));
  std::shared_ptr<arrow::Int64Array> out;
  ARROW_RETURN_NOT_OK(builder.Finish(&out));
  return out;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> TakeRows(
    const std::shared_ptr<arrow::RecordBatch>& batch, const std::vector<int64_t>& rows,
    arrow::MemoryPool* pool) {
  if (static_cast<int64_t>(rows.size()) == batch->num_rows()) {
    bool identity = true;
    for (size_t i = 0; i < rows.size() && identity; ++i) identity = rows[i] == int64_t(i);
    if (identity) return batch;
  }
  ARROW_ASSIGN_OR_RAISE(auto indices, Indices(rows, pool));
  arrow::compute::ExecContext ctx(pool);
  ARROW_ASSIGN_OR_RAISE(arrow::Datum taken,
                        arrow::compute::Take(batch, indices,
                                             arrow::compute::TakeOptions::NoBoundsCheck(), &ctx));
  return taken.record_batch();
}

// What every task of one windowed aggregate shares. Immutable.
struct WindowedPlan {
  WindowParams window;
  std::string window_name;
  // The window's size, slide (= size for tumbling windows), gap and allowed lateness in ticks.
  int64_t size = 0;
  int64_t slide = 0;
  int64_t gap = 0;
  int64_t lateness = 0;
  std::vector<std::string> keys;
  TimeColumn time;
  std::shared_ptr<arrow::Schema> input_schema;
  // The input with window_start and window_end appended: what a session's aggregation reads;
  // its keys are the stream's keys, window_start, window_end (a batch holds many sessions).
  std::shared_ptr<arrow::Schema> extended_schema;
  std::shared_ptr<const BoundAggregation> session_aggregation;
  // Tumbling and sliding: one aggregation per window, over the input, keyed by the stream's
  // keys; window_start and window_end (constant in a window) are added to its result.
  std::shared_ptr<const BoundAggregation> aggregation;
  // Tumbling and sliding windows whose aggregates have a mergeable partial form: windows
  // aggregate partials (partials->partial()), finalized when they fire, so a snapshot can write
  // an open window's state as rows and a restore read it back (Window::merged). Null otherwise,
  // and `no_partials` says why (a snapshot of such a window fails with it).
  std::shared_ptr<const PartialAggregation> partials;
  std::string no_partials;
  // keys, window_start, window_end, aggregates.
  std::shared_ptr<arrow::Schema> output_schema;
  std::vector<int> key_indices;  // in the input schema
  std::optional<BoundOperator> late_output;
};

// The input batch `batch` with window_start / window_end columns appended.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> Extend(
    const WindowedPlan& plan, const std::shared_ptr<arrow::RecordBatch>& batch,
    std::shared_ptr<arrow::Array> start, std::shared_ptr<arrow::Array> end) {
  arrow::ArrayVector columns = batch->columns();
  columns.push_back(std::move(start));
  columns.push_back(std::move(end));
  return arrow::RecordBatch::Make(plan.extended_schema, batch->num_rows(), std::move(columns));
}

// The result of window [start, end)'s aggregation with window_start and window_end inserted
// after the keys.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> WithWindow(
    const WindowedPlan& plan, const std::shared_ptr<arrow::RecordBatch>& result, int64_t start,
    int64_t end, arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(auto start_array, ConstantTime(start, result->num_rows(), plan.time, pool));
  ARROW_ASSIGN_OR_RAISE(auto end_array, ConstantTime(end, result->num_rows(), plan.time, pool));
  arrow::ArrayVector columns = result->columns();
  const auto at = columns.begin() + static_cast<std::ptrdiff_t>(plan.keys.size());
  columns.insert(at, {std::move(start_array), std::move(end_array)});
  return arrow::RecordBatch::Make(plan.output_schema, result->num_rows(), std::move(columns));
}

// The key columns of `batch` (input or extended schema: keys come first in neither, so by
// index) as an ExecBatch for a Grouper.
arrow::compute::ExecBatch KeyBatch(const arrow::RecordBatch& batch,
                                   const std::vector<int>& indices) {
  std::vector<arrow::Datum> values;
  for (int i : indices) values.emplace_back(batch.column(i));
  return arrow::compute::ExecBatch(std::move(values), batch.num_rows());
}

// An open (or fired, still kept) tumbling or sliding window.
struct Window {
  int64_t start = 0;
  int64_t end = 0;
  // Until it fires. Past the task's state budget it spills (GraceAggregation): the rows of keys
  // it does not hold go to disk by key hash, aggregated partition by partition when it fires.
  std::unique_ptr<GraceAggregation> aggregation;
  // The window's partial results written by a snapshot or read by a restore (over
  // WindowedPlan::partials->remerge()), which the rows aggregated since are merged into when the
  // window fires; null until then.
  std::unique_ptr<GraceAggregation> merged;
  bool fired = false;
  // allowed_lateness > 0: every batch of the window (to recompute it on a late row), and the
  // late-but-allowed batches not yet re-emitted. Past the budget `rows` move to `spilled_rows`
  // (by key hash), where every later row of the window goes too.
  std::vector<std::shared_ptr<arrow::RecordBatch>> rows;
  std::unique_ptr<SpillRuns> spilled_rows;
  std::vector<std::shared_ptr<arrow::RecordBatch>> pending;
  // The state budget's share: `aggregation`'s bytes, and the buffers of `rows` (`pending`
  // shares them).
  int64_t rows_bytes = 0;
};

// One buffered batch of a session window: its rows, their event times, and which rows the
// last emitted sessions already covered.
struct SessionBatch {
  std::shared_ptr<arrow::RecordBatch> batch;
  std::vector<int64_t> ticks;
  std::vector<uint8_t> emitted;

  // What it holds, for the state budget.
  int64_t bytes() const {
    return arrow::util::TotalBufferSize(*batch) +
           static_cast<int64_t>(ticks.size() * sizeof(int64_t) + emitted.size());
  }
};

class WindowedAggregate : public Operator {
 public:
  WindowedAggregate(std::shared_ptr<const WindowedPlan> plan, const TaskContext& ctx)
      : plan_(std::move(plan)),
        pool_(ctx.pool),
        budget_(ctx),
        spill_(ctx.spill_directory, SpillDirectoryName("window", ctx),
               "aggregate '" + budget_.operator_name + "' (window '" + plan_->window_name +
                   "')") {}

  arrow::Status Open(const TaskContext& ctx) {
    if (plan_->late_output) {
      ARROW_ASSIGN_OR_RAISE(late_sink_, plan_->late_output->make_operator(ctx));
    }
    if (!plan_->keys.empty()) {
      ARROW_ASSIGN_OR_RAISE(hasher_, KeyHasher::Make(plan_->keys, *plan_->input_schema));
    }
    return arrow::Status::OK();
  }

  ~WindowedAggregate() override = default;

  int64_t rows_in() const override { return rows_in_; }
  int64_t rows_out() const override { return rows_out_; }
  int64_t late_rows() const override { return late_rows_; }

  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_in_ += batch->num_rows();
    if (batch->num_rows() == 0) return arrow::Status::OK();
    EventTimes times;
    if (processing_time()) {
      const int64_t now = WallClockMs();
      times.ticks.assign(static_cast<size_t>(batch->num_rows()), now);
      times.valid.assign(static_cast<size_t>(batch->num_rows()), 1);
    } else {
      ARROW_ASSIGN_OR_RAISE(times, ReadEventTimes(*batch, plan_->time));
    }
    if (plan_->window.type == WindowType::kSession) {
      ARROW_RETURN_NOT_OK(ProcessSession(batch, times));
    } else {
      ARROW_RETURN_NOT_OK(ProcessWindows(batch, times));
    }
    return EnforceStateBudget();
  }

  arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) override {
    if (!processing_time()) {
      const int64_t ticks = WatermarkTicks(watermark);
      if (ticks > watermark_) watermark_ = ticks;
      ARROW_RETURN_NOT_OK(Advance(watermark_, out));
    }
    return out->EmitWatermark(watermark);
  }

  std::optional<std::chrono::steady_clock::time_point> NextTimer() const override {
    if (!processing_time()) return std::nullopt;
    const int64_t due = NextDueMs();
    if (due == kEndOfTime) return std::nullopt;
    const int64_t wait = std::max<int64_t>(0, due - WallClockMs());
    return std::chrono::steady_clock::now() + std::chrono::milliseconds(wait);
  }

  arrow::Status OnTimer(OperatorOutput* out) override {
    if (!processing_time()) return arrow::Status::OK();
    return Advance(WallClockMs(), out);
  }

  arrow::Status Finish(OperatorOutput* out) override {
    // Event time: the end-of-time watermark fired everything already; processing time: the
    // end of input fires what is open.
    ARROW_RETURN_NOT_OK(Advance(kEndOfTime, out));
    session_spill_.reset();
    spill_.Remove();  // every window fired: no spill file is needed any more
    if (late_sink_ != nullptr) ARROW_RETURN_NOT_OK(late_sink_->Finish(&no_output_));
    return arrow::Status::OK();
  }

  arrow::Status PrepareCommit() override {
    return late_sink_ != nullptr ? late_sink_->PrepareCommit() : arrow::Status::OK();
  }
  arrow::Status Commit() override {
    return late_sink_ != nullptr ? late_sink_->Commit() : arrow::Status::OK();
  }

  void Abort() override {
    windows_.clear();
    sessions_.clear();
    session_bytes_ = 0;
    session_spill_.reset();
    spill_.Remove();
    if (late_sink_ != nullptr) late_sink_->Abort();
  }

  int64_t state_spilled_bytes() const override { return spill_.spilled_bytes(); }

  // The snapshot (docs/fault-tolerance.md, "Operator state"): parts
  //   windows       window_start, fired (0/1): every open or kept window
  //   partials      __window_start + the partial results of each open window (written by
  //                 finishing its aggregation, which continues from them: Window::merged)
  //   kept_rows     __window_start + input rows kept for allowed lateness (fired or not)
  //   pending_rows  __window_start + late-but-allowed rows not yet re-emitted
  //   sessions      buffered session rows + their ticks and emitted flags
  //   progress      watermark, late_rows, session_next_due
  //   late_*        the late output's own snapshot
  // NotImplemented, naming the aggregate, when a window is open and its aggregates have no
  // partial form (count_distinct, approx_median, mean of decimals).
  arrow::Status Snapshot(CheckpointId id, StateWriter* state) override {
    const bool session = plan_->window.type == WindowType::kSession;
    if (!session && plan_->partials == nullptr) {
      for (const auto& [start, window] : windows_) {
        if (window.fired) continue;
        return arrow::Status::NotImplemented(
            "aggregate '", budget_.operator_name, "' (window '", plan_->window_name,
            "') cannot snapshot an open window's state: ", plan_->no_partials,
            "; use aggregates with a partial form (count, sum, min, max, first, last, mean of "
            "floats) in a job with checkpoints");
      }
    }
    arrow::Int64Builder starts(pool_);
    arrow::Int64Builder fired(pool_);
    std::vector<std::shared_ptr<arrow::RecordBatch>> partial_rows, kept_rows, pending_rows;
    for (auto& [start, window] : windows_) {
      ARROW_RETURN_NOT_OK(starts.Append(start));
      ARROW_RETURN_NOT_OK(fired.Append(window.fired ? 1 : 0));
      if (!window.fired) {
        // The window's partials so far become its merged state (and the snapshot's rows).
        ARROW_ASSIGN_OR_RAISE(auto merged, WindowAggregation(/*merged=*/true));
        const int64_t window_start = start;
        auto take = [&](std::shared_ptr<arrow::RecordBatch> rows) -> arrow::Status {
          ARROW_ASSIGN_OR_RAISE(auto numbered, WithStart(window_start, rows));
          partial_rows.push_back(std::move(numbered));
          return merged->Consume(rows);
        };
        if (window.merged != nullptr) ARROW_RETURN_NOT_OK(window.merged->Finish(take));
        ARROW_RETURN_NOT_OK(window.aggregation->Finish(take));
        ARROW_ASSIGN_OR_RAISE(window.aggregation, WindowAggregation(/*merged=*/false));
        window.merged = std::move(merged);
      }
      for (const auto& rows : window.rows) {
        ARROW_ASSIGN_OR_RAISE(auto numbered, WithStart(start, rows));
        kept_rows.push_back(std::move(numbered));
      }
      if (window.spilled_rows != nullptr) {
        for (int32_t p = 0; p < kSpillPartitions; ++p) {
          // The window's start by value: clang before 16 refuses a lambda that captures a
          // structured binding.
          auto keep = [&, window_start = start](
                          std::shared_ptr<arrow::RecordBatch> b) -> arrow::Status {
            ARROW_ASSIGN_OR_RAISE(auto numbered, WithStart(window_start, b));
            kept_rows.push_back(std::move(numbered));
            return arrow::Status::OK();
          };
          ARROW_RETURN_NOT_OK(window.spilled_rows->Read(p, keep));
        }
      }
      for (const auto& rows : window.pending) {
        ARROW_ASSIGN_OR_RAISE(auto numbered, WithStart(start, rows));
        pending_rows.push_back(std::move(numbered));
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto start_array, starts.Finish());
    ARROW_ASSIGN_OR_RAISE(auto fired_array, fired.Finish());
    auto window_schema = arrow::schema({arrow::field("window_start", arrow::int64(), false),
                                        arrow::field("fired", arrow::int64(), false)});
    ARROW_RETURN_NOT_OK(state->Put(
        "windows", arrow::Table::Make(window_schema, {start_array, fired_array})));
    if (plan_->partials != nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto table,
                            arrow::Table::FromRecordBatches(
                                StartSchema(plan_->partials->partial()->output_schema()),
                                partial_rows));
      ARROW_RETURN_NOT_OK(state->Put("partials", std::move(table)));
    }
    const auto rows_schema = StartSchema(plan_->input_schema);
    ARROW_ASSIGN_OR_RAISE(auto kept, arrow::Table::FromRecordBatches(rows_schema, kept_rows));
    ARROW_RETURN_NOT_OK(state->Put("kept_rows", std::move(kept)));
    ARROW_ASSIGN_OR_RAISE(auto pending,
                          arrow::Table::FromRecordBatches(rows_schema, pending_rows));
    ARROW_RETURN_NOT_OK(state->Put("pending_rows", std::move(pending)));
    std::vector<std::shared_ptr<arrow::RecordBatch>> session_rows;
    for (const SessionBatch& entry : sessions_) {
      ARROW_ASSIGN_OR_RAISE(auto rows, ToSessionColumns(entry));
      session_rows.push_back(std::move(rows));
    }
    if (session_spill_ != nullptr) {
      for (int32_t p = 0; p < kSpillPartitions; ++p) {
        ARROW_RETURN_NOT_OK(session_spill_->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
          session_rows.push_back(std::move(b));
          return arrow::Status::OK();
        }));
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto sessions,
                          arrow::Table::FromRecordBatches(SessionSchema(), session_rows));
    ARROW_RETURN_NOT_OK(state->Put("sessions", std::move(sessions)));
    ARROW_RETURN_NOT_OK(state->Put(
        "progress", Int64Row({{"watermark", watermark_},
                              {"late_rows", late_rows_},
                              {"session_next_due", session_next_due_}})));
    if (late_sink_ != nullptr) {
      PrefixedState late("late_", state, nullptr);
      ARROW_RETURN_NOT_OK(late_sink_->Snapshot(id, &late));
    }
    return arrow::Status::OK();
  }

  arrow::Status Restore(CheckpointId id, StateReader* state) override {
    ARROW_ASSIGN_OR_RAISE(auto progress, state->Get("progress"));
    if (progress == nullptr) return arrow::Status::OK();  // nothing was put
    ARROW_ASSIGN_OR_RAISE(auto values,
                          ReadInt64Row(*progress, {"watermark", "late_rows", "session_next_due"}));
    watermark_ = values[0];
    late_rows_ = values[1];
    session_next_due_ = values[2];
    ARROW_ASSIGN_OR_RAISE(auto windows, state->Get("windows"));
    if (windows != nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto all, windows->CombineChunksToBatch(pool_));
      const auto& starts = static_cast<const arrow::Int64Array&>(*all->column(0));
      const auto& fired = static_cast<const arrow::Int64Array&>(*all->column(1));
      for (int64_t i = 0; i < all->num_rows(); ++i) {
        Window& window = windows_[starts.Value(i)];
        window.start = starts.Value(i);
        window.end = AddTicks(window.start, plan_->size);
        window.fired = fired.Value(i) != 0;
        if (window.fired) continue;
        if (plan_->partials == nullptr) {
          return arrow::Status::Invalid("aggregate '", budget_.operator_name,
                                        "': a snapshot with open windows, which it cannot "
                                        "restore: ", plan_->no_partials);
        }
        ARROW_ASSIGN_OR_RAISE(window.aggregation, WindowAggregation(/*merged=*/false));
        ARROW_ASSIGN_OR_RAISE(window.merged, WindowAggregation(/*merged=*/true));
      }
    }
    auto each_window = [&](const std::string& part,
                           const std::function<arrow::Status(
                               Window*, std::shared_ptr<arrow::RecordBatch>)>& take)
        -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto table, state->Get(part));
      if (table == nullptr) return arrow::Status::OK();
      arrow::TableBatchReader reader(*table);
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
        if (batch == nullptr) return arrow::Status::OK();
        const auto& starts = static_cast<const arrow::Int64Array&>(*batch->column(0));
        ARROW_ASSIGN_OR_RAISE(auto rows, batch->RemoveColumn(0));
        for (int64_t first = 0; first < rows->num_rows();) {
          int64_t last = first;
          while (last + 1 < rows->num_rows() && starts.Value(last + 1) == starts.Value(first)) {
            ++last;
          }
          auto it = windows_.find(starts.Value(first));
          if (it == windows_.end()) {
            return arrow::Status::Invalid("snapshot part '", part, "' has rows of window ",
                                          starts.Value(first), ", which part 'windows' lacks");
          }
          ARROW_RETURN_NOT_OK(take(&it->second, rows->Slice(first, last - first + 1)));
          first = last + 1;
        }
      }
    };
    using Rows = std::shared_ptr<arrow::RecordBatch>;
    ARROW_RETURN_NOT_OK(each_window("partials", [](Window* w, Rows r) {
      if (w->merged == nullptr) return arrow::Status::Invalid("partial rows of a fired window");
      return w->merged->Consume(r);
    }));
    ARROW_RETURN_NOT_OK(each_window("kept_rows", [&](Window* w, Rows r) {
      return KeepRows(w, std::move(r));
    }));
    ARROW_RETURN_NOT_OK(each_window("pending_rows", [](Window* w, Rows r) {
      w->pending.push_back(std::move(r));
      return arrow::Status::OK();
    }));
    ARROW_ASSIGN_OR_RAISE(auto sessions, state->Get("sessions"));
    if (sessions != nullptr) {
      arrow::TableBatchReader reader(*sessions);
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
        if (batch == nullptr) break;
        if (batch->num_rows() == 0) continue;
        ARROW_ASSIGN_OR_RAISE(SessionBatch entry, FromSessionColumns(batch));
        HoldSession(std::move(entry));
      }
    }
    if (late_sink_ != nullptr) {
      PrefixedState late("late_", nullptr, state);
      ARROW_RETURN_NOT_OK(late_sink_->Restore(id, &late));
    }
    return EnforceStateBudget();
  }

  arrow::Status CheckpointComplete(CheckpointId id) override {
    return late_sink_ != nullptr ? late_sink_->CheckpointComplete(id) : arrow::Status::OK();
  }

 private:
  bool processing_time() const { return plan_->window.time == TimeDomain::kProcessingTime; }

  // The bytes of state the task holds: open and kept windows' aggregation states and rows,
  // buffered session rows.
  int64_t StateBytes() const {
    int64_t bytes = session_bytes_;
    for (const auto& [start, window] : windows_) {
      if (window.aggregation != nullptr) bytes += window.aggregation->memory_bytes();
      if (window.merged != nullptr) bytes += window.merged->memory_bytes();
      bytes += window.rows_bytes;
    }
    return bytes;
  }

  // Past the task's state budget, window state spills instead of growing: every open window
  // stops taking new keys into memory (their rows go to disk by key hash), the rows kept for
  // allowed lateness and the buffered session rows move to disk. Never fails for want of memory
  // while the disk has room.
  arrow::Status EnforceStateBudget() {
    if (budget_.bytes <= 0 || StateBytes() <= budget_.bytes) return arrow::Status::OK();
    if (plan_->window.type == WindowType::kSession) return SpillSessions();
    for (auto& [start, window] : windows_) {
      if (window.aggregation != nullptr) ARROW_RETURN_NOT_OK(window.aggregation->StartSpilling());
      if (window.merged != nullptr) ARROW_RETURN_NOT_OK(window.merged->StartSpilling());
      if (window.spilled_rows == nullptr && !window.rows.empty()) {
        window.spilled_rows = std::make_unique<SpillRuns>(
            &spill_, "rows" + std::to_string(next_spill_id_++), pool_);
        for (const auto& rows : window.rows) {
          ARROW_RETURN_NOT_OK(SpillRows(rows, window.spilled_rows.get()));
        }
        window.rows.clear();
        window.rows_bytes = 0;
      }
    }
    return arrow::Status::OK();
  }

  // `schema` with an int64 `__window_start` column first.
  static std::shared_ptr<arrow::Schema> StartSchema(const std::shared_ptr<arrow::Schema>& schema) {
    arrow::FieldVector fields = schema->fields();
    fields.insert(fields.begin(), arrow::field("__window_start", arrow::int64(), false));
    return arrow::schema(std::move(fields));
  }

  // `rows` with `start` as a first column.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> WithStart(
      int64_t start, const std::shared_ptr<arrow::RecordBatch>& rows) const {
    arrow::Int64Builder builder(pool_);
    ARROW_RETURN_NOT_OK(builder.AppendValues(std::vector<int64_t>(rows->num_rows(), start)));
    ARROW_ASSIGN_OR_RAISE(auto column, builder.Finish());
    arrow::ArrayVector columns = rows->columns();
    columns.insert(columns.begin(), std::move(column));
    return arrow::RecordBatch::Make(StartSchema(rows->schema()), rows->num_rows(),
                                    std::move(columns));
  }

  // The late output's snapshot parts, named with a prefix among the aggregate's.
  class PrefixedState : public StateWriter, public StateReader {
   public:
    PrefixedState(std::string prefix, StateWriter* writer, StateReader* reader)
        : prefix_(std::move(prefix)), writer_(writer), reader_(reader) {}
    arrow::Status Put(const std::string& name, std::shared_ptr<arrow::Table> table) override {
      return writer_->Put(prefix_ + name, std::move(table));
    }
    arrow::Result<std::shared_ptr<arrow::Table>> Get(const std::string& name) override {
      return reader_->Get(prefix_ + name);
    }

   private:
    std::string prefix_;
    StateWriter* writer_;
    StateReader* reader_;
  };

  // Appends `rows` (of the input schema, or extended by session columns: keys by index either
  // way) to `runs` by key hash; without keys everything goes to partition 0.
  arrow::Status SpillRows(const std::shared_ptr<arrow::RecordBatch>& rows, SpillRuns* runs) {
    if (hasher_ == nullptr) return runs->AppendTo(0, rows);
    ARROW_RETURN_NOT_OK(HashKeys(*rows));
    return runs->Append(rows, hashes_.data());
  }

  // Row hashes of the keys of `rows` into hashes_.
  arrow::Status HashKeys(const arrow::RecordBatch& rows) {
    hashes_.resize(static_cast<size_t>(rows.num_rows()));
    std::vector<const arrow::ArrayData*> keys;
    for (int i : plan_->key_indices) keys.push_back(rows.column_data(i).get());
    return hasher_->HashArrays(keys, rows.num_rows(), hashes_.data());
  }

  void HoldSession(SessionBatch entry) {
    session_bytes_ += entry.bytes();
    sessions_.push_back(std::move(entry));
  }
  int64_t lateness() const { return plan_->lateness; }

  // Watermark W (ms) in ticks: no row comes with an event time below it. Saturates (a watermark
  // beyond the column's range holds no row back).
  int64_t WatermarkTicks(WatermarkMs watermark) const {
    if (watermark == kNoWatermark || watermark == kEndOfTimeWatermark) return watermark;
    int64_t ticks = 0;
    if (__builtin_mul_overflow(watermark, plan_->time.ticks_per_ms, &ticks)) {
      return watermark < 0 ? kNoWatermark + 1 : kEndOfTime;
    }
    return ticks;
  }

  // The earliest time (ticks; ms for processing time) at which Advance has something to do.
  int64_t NextDueMs() const {
    int64_t due = kEndOfTime;
    for (const auto& [start, window] : windows_) {
      due = std::min(due, window.fired ? AddTicks(window.end, lateness()) : window.end);
    }
    if (!sessions_.empty() || session_spill_ != nullptr) due = std::min(due, session_next_due_);
    return due;
  }

  // ---- Tumbling and sliding windows -----------------------------------------------------------

  arrow::Status ProcessWindows(const std::shared_ptr<arrow::RecordBatch>& batch,
                               const EventTimes& times) {
    const int64_t size = plan_->size;
    const int64_t slide = plan_->slide;
    // Windows containing t start at floor(t / slide) * slide - j * slide for j = 0, 1, ...
    // while start + size > t.
    const int64_t per_row = (size + slide - 1) / slide;
    // Rows per window start, in first-seen order; a batch usually spans one or two windows, so
    // the last window looked up is tried first.
    std::vector<std::pair<int64_t, std::vector<int64_t>>> groups;
    std::unordered_map<int64_t, size_t> group_of;
    size_t last_group = 0;
    auto rows_of = [&](int64_t start) -> std::vector<int64_t>& {
      if (last_group < groups.size() && groups[last_group].first == start) {
        return groups[last_group].second;
      }
      auto [it, inserted] = group_of.try_emplace(start, groups.size());
      if (inserted) groups.emplace_back(start, std::vector<int64_t>());
      last_group = it->second;
      return groups[last_group].second;
    };
    std::vector<int64_t> late;
    const int64_t n = batch->num_rows();
    if (plan_->window.type == WindowType::kTumbling && times.nulls == 0) {
      // The common case: the whole batch falls in one tumbling window that still takes rows.
      const auto [lo, hi] = std::minmax_element(times.ticks.begin(), times.ticks.end());
      int64_t start = 0;
      int64_t hi_start = 0;
      int64_t end = 0;
      if (FloorTo(*lo, size, &start) && FloorTo(*hi, size, &hi_start) && hi_start == start &&
          !__builtin_add_overflow(start, size, &end) &&
          (processing_time() || AddTicks(end, lateness()) > watermark_)) {
        return AddToWindow(start, size, batch);
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      if (!times.valid[i]) {
        late.push_back(i);
        continue;
      }
      const int64_t t = times.ticks[i];
      // Window bounds are checked: a window of a time near either end of the int64 range may
      // start or end outside it (spans are at most kMaxSpanTicks, so the products fit).
      int64_t last = 0;
      int64_t end = 0;
      if (!FloorTo(t, slide, &last) || __builtin_add_overflow(last, size, &end)) {
        return OutOfRange(t);
      }
      // The earliest window holding t ends first: when it is kept no longer (it ended at least
      // allowed_lateness ago), the row is late for all of its windows — it goes to none rather
      // than to some, so every row is either in each of its windows or a late row.
      int64_t windows = 1;  // [last, last + size) holds t
      while (windows < per_row &&
             static_cast<__int128>(end) - static_cast<__int128>(windows) * slide > t) {
        ++windows;
      }
      int64_t earliest_start = 0;
      if (__builtin_sub_overflow(last, (windows - 1) * slide, &earliest_start)) {
        return OutOfRange(t);
      }
      const int64_t earliest_end = earliest_start + size;
      if (!processing_time() && AddTicks(earliest_end, lateness()) <= watermark_) {
        late.push_back(i);
        continue;
      }
      for (int64_t j = 0; j < windows; ++j) rows_of(last - j * slide).push_back(i);
    }
    for (auto& [start, rows] : groups) {
      ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, rows, pool_));
      ARROW_RETURN_NOT_OK(AddToWindow(start, size, std::move(taken)));
    }
    return Late(batch, late);
  }

  // Adds `rows` (all of window [start, start + size)) to the window, opening it if needed.
  arrow::Status AddToWindow(int64_t start, int64_t size, std::shared_ptr<arrow::RecordBatch> rows) {
    auto [it, inserted] = windows_.try_emplace(start);
    Window& window = it->second;
    if (inserted) {
      window.start = start;
      window.end = start + size;
      ARROW_ASSIGN_OR_RAISE(window.aggregation, WindowAggregation(/*merged=*/false));
    }
    if (window.fired) {
      // Late but allowed: the window's rows for the affected keys are emitted again.
      ARROW_RETURN_NOT_OK(KeepRows(&window, rows));
      window.pending.push_back(std::move(rows));
      return arrow::Status::OK();
    }
    ARROW_RETURN_NOT_OK(window.aggregation->Consume(rows));
    if (lateness() > 0 && !processing_time()) {
      ARROW_RETURN_NOT_OK(KeepRows(&window, std::move(rows)));
    }
    return arrow::Status::OK();
  }

  // A new aggregation of a window's rows (`merged`: of its partial rows), spilling past the
  // budget.
  arrow::Result<std::unique_ptr<GraceAggregation>> WindowAggregation(bool merged) {
    std::shared_ptr<const BoundAggregation> bound =
        plan_->partials == nullptr ? plan_->aggregation
        : merged                   ? plan_->partials->remerge()
                                   : plan_->partials->partial();
    auto aggregation = std::make_unique<GraceAggregation>(
        std::move(bound), pool_, budget_.bytes, &spill_, 0,
        "window" + std::to_string(next_spill_id_++));
    ARROW_RETURN_NOT_OK(aggregation->Init());
    return aggregation;
  }

  // Keeps `rows` of `window` for recomputing it on a late row: in memory, or on disk once the
  // window's kept rows spilled.
  arrow::Status KeepRows(Window* window, std::shared_ptr<arrow::RecordBatch> rows) {
    if (window->spilled_rows != nullptr) return SpillRows(rows, window->spilled_rows.get());
    window->rows_bytes += arrow::util::TotalBufferSize(*rows);
    window->rows.push_back(std::move(rows));
    return arrow::Status::OK();
  }

  // Fires the windows that end at or before `now` (ticks), re-emits windows updated by late rows,
  // and drops the windows kept long enough.
  arrow::Status AdvanceWindows(int64_t now, OperatorOutput* out) {
    for (auto it = windows_.begin(); it != windows_.end();) {
      Window& window = it->second;
      if (window.fired && !window.pending.empty()) {
        ARROW_RETURN_NOT_OK(EmitUpdate(&window, out));
      }
      if (!window.fired && window.end <= now) {
        // The in-memory keys, then each spilled partition's (one partition in memory at a
        // time).
        auto emit = [&](std::shared_ptr<arrow::RecordBatch> result) -> arrow::Status {
          if (plan_->partials != nullptr) {
            ARROW_ASSIGN_OR_RAISE(result, plan_->partials->Finalize(*result, pool_));
          }
          ARROW_ASSIGN_OR_RAISE(result,
                                WithWindow(*plan_, result, window.start, window.end, pool_));
          return EmitRows(result, out);
        };
        if (window.merged != nullptr) {
          // Partials since the last snapshot or restore, after the ones it holds.
          GraceAggregation* merged = window.merged.get();
          ARROW_RETURN_NOT_OK(window.aggregation->Finish(
              [merged](std::shared_ptr<arrow::RecordBatch> rows) {
                return merged->Consume(rows);
              }));
          ARROW_RETURN_NOT_OK(window.merged->Finish(emit));
          window.merged.reset();
        } else {
          ARROW_RETURN_NOT_OK(window.aggregation->Finish(emit));
        }
        window.aggregation.reset();
        window.fired = true;
      }
      if (window.fired && (processing_time() || AddTicks(window.end, lateness()) <= now)) {
        if (window.spilled_rows != nullptr) window.spilled_rows->Clear();
        it = windows_.erase(it);
      } else {
        ++it;
      }
    }
    return arrow::Status::OK();
  }

  // A fired window got late-but-allowed rows: recomputes it and emits the rows of the keys those
  // rows carry. With its rows on disk, only the partitions of those keys are recomputed, one at a
  // time.
  arrow::Status EmitUpdate(Window* window, OperatorOutput* out) {
    std::vector<std::shared_ptr<arrow::RecordBatch>> pending = std::move(window->pending);
    window->pending.clear();
    if (window->spilled_rows == nullptr) {
      return EmitUpdateOf(*window, window->rows, pending, out);
    }
    std::vector<uint8_t> touched(kSpillPartitions, 0);
    for (const auto& rows : pending) {
      if (hasher_ == nullptr) {
        touched[0] = 1;
        continue;
      }
      ARROW_RETURN_NOT_OK(HashKeys(*rows));
      for (uint64_t hash : hashes_) touched[window->spilled_rows->PartitionOf(hash)] = 1;
    }
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (!touched[p]) continue;
      std::vector<std::shared_ptr<arrow::RecordBatch>> rows;
      ARROW_RETURN_NOT_OK(window->spilled_rows->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
        rows.push_back(std::move(b));
        return arrow::Status::OK();
      }));
      ARROW_RETURN_NOT_OK(EmitUpdateOf(*window, rows, pending, out));
    }
    return arrow::Status::OK();
  }

  // Aggregates `rows` of `window` and emits the result rows of the keys in `pending`.
  arrow::Status EmitUpdateOf(const Window& window,
                             const std::vector<std::shared_ptr<arrow::RecordBatch>>& rows,
                             const std::vector<std::shared_ptr<arrow::RecordBatch>>& pending,
                             OperatorOutput* out) {
    ARROW_ASSIGN_OR_RAISE(auto aggregation, GroupedAggregation::Make(plan_->aggregation, pool_));
    for (const auto& batch : rows) ARROW_RETURN_NOT_OK(aggregation->Consume(*batch));
    ARROW_ASSIGN_OR_RAISE(auto finished, aggregation->Finish());
    ARROW_ASSIGN_OR_RAISE(auto result,
                          WithWindow(*plan_, finished, window.start, window.end, pool_));
    if (plan_->keys.empty()) return EmitRows(result, out);
    // The result's keys come first, in the order of the stream's keys.
    std::vector<arrow::TypeHolder> types;
    std::vector<int> result_keys;
    for (size_t k = 0; k < plan_->keys.size(); ++k) {
      types.emplace_back(result->schema()->field(static_cast<int>(k))->type());
      result_keys.push_back(static_cast<int>(k));
    }
    arrow::compute::ExecContext ctx(pool_);
    ARROW_ASSIGN_OR_RAISE(auto grouper, arrow::compute::Grouper::Make(types, &ctx));
    for (const auto& batch : pending) {
      arrow::compute::ExecBatch keys = KeyBatch(*batch, plan_->key_indices);
      ARROW_RETURN_NOT_OK(grouper->Populate(arrow::compute::ExecSpan(keys)));
    }
    arrow::compute::ExecBatch keys = KeyBatch(*result, result_keys);
    ARROW_ASSIGN_OR_RAISE(arrow::Datum ids, grouper->Lookup(arrow::compute::ExecSpan(keys)));
    std::shared_ptr<arrow::Array> id_array = ids.make_array();
    std::vector<int64_t> affected;
    for (int64_t i = 0; i < id_array->length(); ++i) {
      if (id_array->IsValid(i)) affected.push_back(i);
    }
    ARROW_ASSIGN_OR_RAISE(auto updated, TakeRows(result, affected, pool_));
    return EmitRows(updated, out);
  }

  // ---- Session windows ------------------------------------------------------------------------

  arrow::Status ProcessSession(const std::shared_ptr<arrow::RecordBatch>& batch,
                               const EventTimes& times) {
    const int64_t gap = plan_->gap;
    std::vector<int64_t> kept;
    std::vector<int64_t> late;
    const int64_t n = batch->num_rows();
    kept.reserve(n);
    int64_t earliest = kEndOfTime;
    for (int64_t i = 0; i < n; ++i) {
      // Later than the allowed lateness: event_time + allowed_lateness < watermark. Such a row
      // could belong to a session already dropped.
      if (!times.valid[i] ||
          (!processing_time() && watermark_ != kNoWatermark &&
           AddTicks(times.ticks[i], lateness()) < watermark_)) {
        late.push_back(i);
        continue;
      }
      kept.push_back(i);
      earliest = std::min(earliest, times.ticks[i]);
    }
    if (!kept.empty()) {
      SessionBatch entry;
      ARROW_ASSIGN_OR_RAISE(entry.batch, TakeRows(batch, kept, pool_));
      entry.ticks.reserve(kept.size());
      for (int64_t i : kept) entry.ticks.push_back(times.ticks[i]);
      entry.emitted.assign(kept.size(), 0);
      HoldSession(std::move(entry));
      // A new row can only open a session ending at its time + gap or extend one.
      session_next_due_ = std::min(session_next_due_, AddTicks(earliest, gap));
    }
    return Late(batch, late);
  }

  // Recomputes the sessions of the buffered rows when one can fire or be dropped at `now`:
  // emits the sessions that ended and hold rows not emitted yet, drops the sessions kept long
  // enough, and keeps the others' rows.
  // With the rows on disk (session_spill_), partition by partition: each partition's rows (its
  // keys' sessions are whole in it) are read, recomputed, and the kept ones written to a new
  // generation of files; back to memory once nothing is kept.
  arrow::Status AdvanceSessions(int64_t now, OperatorOutput* out) {
    if ((sessions_.empty() && session_spill_ == nullptr) || now < session_next_due_) {
      return arrow::Status::OK();
    }
    int64_t next_due = kEndOfTime;
    if (session_spill_ == nullptr) {
      std::vector<SessionBatch> entries = std::move(sessions_);
      sessions_.clear();
      session_bytes_ = 0;
      std::vector<SessionBatch> kept;
      ARROW_RETURN_NOT_OK(SessionPass(std::move(entries), now, out, &kept, &next_due));
      for (SessionBatch& entry : kept) HoldSession(std::move(entry));
      session_next_due_ = next_due;
      return arrow::Status::OK();
    }
    ARROW_RETURN_NOT_OK(SpillSessions());  // what arrived since is on disk too
    auto next = std::make_unique<SpillRuns>(
        &spill_, "sessions" + std::to_string(next_spill_id_++), pool_);
    for (int32_t p = 0; p < kSpillPartitions; ++p) {
      if (session_spill_->rows(p) == 0) continue;
      std::vector<SessionBatch> entries;
      ARROW_RETURN_NOT_OK(session_spill_->Read(p, [&](std::shared_ptr<arrow::RecordBatch> b) {
        ARROW_ASSIGN_OR_RAISE(SessionBatch entry, FromSessionColumns(b));
        entries.push_back(std::move(entry));
        return arrow::Status::OK();
      }));
      session_spill_->Clear(p);
      std::vector<SessionBatch> kept;
      ARROW_RETURN_NOT_OK(SessionPass(std::move(entries), now, out, &kept, &next_due));
      for (const SessionBatch& entry : kept) {
        ARROW_ASSIGN_OR_RAISE(auto rows, ToSessionColumns(entry));
        ARROW_RETURN_NOT_OK(next->AppendTo(p, rows));
      }
    }
    session_spill_->Clear();
    session_spill_ = next->empty() ? nullptr : std::move(next);
    session_next_due_ = next_due;
    return arrow::Status::OK();
  }

  // The buffered session rows (sessions_) move to disk, by key hash.
  arrow::Status SpillSessions() {
    if (session_spill_ == nullptr) {
      session_spill_ = std::make_unique<SpillRuns>(
          &spill_, "sessions" + std::to_string(next_spill_id_++), pool_);
    }
    for (const SessionBatch& entry : sessions_) {
      ARROW_ASSIGN_OR_RAISE(auto rows, ToSessionColumns(entry));
      ARROW_RETURN_NOT_OK(SpillRows(rows, session_spill_.get()));
    }
    sessions_.clear();
    session_bytes_ = 0;
    return arrow::Status::OK();
  }

  // A SessionBatch as one batch: its rows, then its ticks (int64) and emitted flags (uint8).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> ToSessionColumns(
      const SessionBatch& entry) const {
    arrow::Int64Builder ticks(pool_);
    ARROW_RETURN_NOT_OK(ticks.AppendValues(entry.ticks));
    arrow::UInt8Builder emitted(pool_);
    ARROW_RETURN_NOT_OK(emitted.AppendValues(entry.emitted));
    ARROW_ASSIGN_OR_RAISE(auto ticks_array, ticks.Finish());
    ARROW_ASSIGN_OR_RAISE(auto emitted_array, emitted.Finish());
    arrow::ArrayVector columns = entry.batch->columns();
    columns.push_back(std::move(ticks_array));
    columns.push_back(std::move(emitted_array));
    return arrow::RecordBatch::Make(SessionSchema(), entry.batch->num_rows(), std::move(columns));
  }

  arrow::Result<SessionBatch> FromSessionColumns(
      const std::shared_ptr<arrow::RecordBatch>& rows) const {
    const int n = plan_->input_schema->num_fields();
    if (rows->num_columns() != n + 2) {
      return arrow::Status::Invalid("session state of window '", plan_->window_name, "' has ",
                                    rows->num_columns(), " columns, not ", n + 2);
    }
    SessionBatch entry;
    arrow::ArrayVector columns(rows->columns().begin(), rows->columns().begin() + n);
    entry.batch = arrow::RecordBatch::Make(plan_->input_schema, rows->num_rows(), columns);
    const auto& ticks = static_cast<const arrow::Int64Array&>(*rows->column(n));
    const auto& emitted = static_cast<const arrow::UInt8Array&>(*rows->column(n + 1));
    entry.ticks.assign(ticks.raw_values(), ticks.raw_values() + ticks.length());
    entry.emitted.assign(emitted.raw_values(), emitted.raw_values() + emitted.length());
    return entry;
  }

  std::shared_ptr<arrow::Schema> SessionSchema() const {
    arrow::FieldVector fields = plan_->input_schema->fields();
    fields.push_back(arrow::field("__sabot_session_ticks", arrow::int64(), false));
    fields.push_back(arrow::field("__sabot_session_emitted", arrow::uint8(), false));
    return arrow::schema(std::move(fields));
  }

  // Recomputes the sessions of `entries` at `now`: emits those that ended and hold rows not
  // emitted yet, puts the rows still kept into *kept, and lowers *next_due to when the next
  // session of these rows ends or may be dropped.
  arrow::Status SessionPass(std::vector<SessionBatch> entries, int64_t now, OperatorOutput* out,
                            std::vector<SessionBatch>* kept, int64_t* next_due_out) {
    if (entries.empty()) return arrow::Status::OK();
    const int64_t gap = plan_->gap;
    const int64_t keep = processing_time() ? 0 : lateness();
    // One batch of every buffered row.
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    std::vector<int64_t> ticks;
    std::vector<uint8_t> emitted;
    for (SessionBatch& entry : entries) {
      batches.push_back(entry.batch);
      ticks.insert(ticks.end(), entry.ticks.begin(), entry.ticks.end());
      emitted.insert(emitted.end(), entry.emitted.begin(), entry.emitted.end());
    }
    entries.clear();
    std::shared_ptr<arrow::RecordBatch> all;
    if (batches.size() == 1) {
      all = batches[0];
    } else {
      ARROW_ASSIGN_OR_RAISE(auto table,
                            arrow::Table::FromRecordBatches(plan_->input_schema, batches));
      ARROW_ASSIGN_OR_RAISE(all, table->CombineChunksToBatch(pool_));
    }
    const int64_t n = all->num_rows();
    // Key ids (a fresh Grouper: ids are dense over the buffered rows).
    std::vector<uint32_t> key_id(static_cast<size_t>(n), 0);
    if (!plan_->keys.empty()) {
      std::vector<arrow::TypeHolder> types;
      for (int i : plan_->key_indices) types.emplace_back(all->column(i)->type());
      arrow::compute::ExecContext ctx(pool_);
      ARROW_ASSIGN_OR_RAISE(auto grouper, arrow::compute::Grouper::Make(types, &ctx));
      arrow::compute::ExecBatch keys = KeyBatch(*all, plan_->key_indices);
      ARROW_ASSIGN_OR_RAISE(arrow::Datum ids, grouper->Consume(arrow::compute::ExecSpan(keys)));
      const std::shared_ptr<arrow::Array> id_array = ids.make_array();
      const auto& id_values = static_cast<const arrow::UInt32Array&>(*id_array);
      for (int64_t i = 0; i < n; ++i) key_id[i] = id_values.Value(i);
    }
    // Rows by key, then event time, then arrival.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      if (key_id[a] != key_id[b]) return key_id[a] < key_id[b];
      if (ticks[a] != ticks[b]) return ticks[a] < ticks[b];
      return a < b;
    });
    std::vector<int64_t> fire_rows, fire_start, fire_end, keep_rows;
    int64_t next_due = kEndOfTime;
    for (size_t first = 0; first < order.size();) {
      // One session: [first, last] in `order`.
      size_t last = first;
      while (last + 1 < order.size() && key_id[order[last + 1]] == key_id[order[first]] &&
             // Unsigned: the difference of two int64 times fits in uint64.
             static_cast<uint64_t>(ticks[order[last + 1]]) -
                     static_cast<uint64_t>(ticks[order[last]]) <
                 static_cast<uint64_t>(gap)) {
        ++last;
      }
      const int64_t start = ticks[order[first]];
      int64_t end = 0;
      if (__builtin_add_overflow(ticks[order[last]], gap, &end)) {
        return OutOfRange(ticks[order[last]]);
      }
      bool fresh = false;
      for (size_t r = first; r <= last; ++r) fresh = fresh || !emitted[order[r]];
      const bool ended = end <= now;
      if (ended && fresh) {
        for (size_t r = first; r <= last; ++r) {
          fire_rows.push_back(order[r]);
          fire_start.push_back(start);
          fire_end.push_back(end);
          emitted[order[r]] = 1;
        }
      }
      if (!ended || AddTicks(end, keep) > now) {
        for (size_t r = first; r <= last; ++r) keep_rows.push_back(order[r]);
        next_due = std::min(next_due, ended ? AddTicks(end, keep) : end);
      }
      first = last + 1;
    }
    if (!fire_rows.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(all, fire_rows, pool_));
      ARROW_ASSIGN_OR_RAISE(auto start_array, TimeArray(fire_start, plan_->time, pool_));
      ARROW_ASSIGN_OR_RAISE(auto end_array, TimeArray(fire_end, plan_->time, pool_));
      ARROW_ASSIGN_OR_RAISE(auto extended, Extend(*plan_, taken, start_array, end_array));
      ARROW_ASSIGN_OR_RAISE(auto aggregation,
                            GroupedAggregation::Make(plan_->session_aggregation, pool_));
      ARROW_RETURN_NOT_OK(aggregation->Consume(*extended));
      ARROW_ASSIGN_OR_RAISE(auto result, aggregation->Finish());
      ARROW_RETURN_NOT_OK(EmitRows(result, out));
    }
    if (!keep_rows.empty()) {
      std::sort(keep_rows.begin(), keep_rows.end());  // arrival order
      SessionBatch entry;
      ARROW_ASSIGN_OR_RAISE(entry.batch, TakeRows(all, keep_rows, pool_));
      for (int64_t r : keep_rows) {
        entry.ticks.push_back(ticks[r]);
        entry.emitted.push_back(emitted[r]);
      }
      kept->push_back(std::move(entry));
    }
    *next_due_out = std::min(*next_due_out, next_due);
    return arrow::Status::OK();
  }

  // ---- Shared ---------------------------------------------------------------------------------

  // A window of event time `t` (ticks) would start or end outside the int64 range.
  arrow::Status OutOfRange(int64_t t) const {
    return arrow::Status::Invalid(
        "window '", plan_->window_name, "': the window of event time ", t, " in its ",
        plan_->time.description, " would start or end outside the range of int64 values");
  }

  arrow::Status Advance(int64_t now, OperatorOutput* out) {
    if (plan_->window.type == WindowType::kSession) return AdvanceSessions(now, out);
    return AdvanceWindows(now, out);
  }

  arrow::Status EmitRows(const std::shared_ptr<arrow::RecordBatch>& rows, OperatorOutput* out) {
    if (rows->num_rows() == 0) return arrow::Status::OK();
    rows_out_ += rows->num_rows();
    return out->Emit(rows);
  }

  // Rows `rows` of `batch` came too late: counted, and written to the late output.
  arrow::Status Late(const std::shared_ptr<arrow::RecordBatch>& batch,
                     const std::vector<int64_t>& rows) {
    if (rows.empty()) return arrow::Status::OK();
    late_rows_ += static_cast<int64_t>(rows.size());
    if (late_sink_ == nullptr) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, rows, pool_));
    arrow::Status written = late_sink_->Process(0, taken, &no_output_);
    if (!written.ok()) return written.WithMessage("late output: ", written.message());
    return arrow::Status::OK();
  }

  // The late output is a sink: it emits nothing.
  class NoOutput : public OperatorOutput {
   public:
    arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>&) override {
      return arrow::Status::OK();
    }
    arrow::Status EmitWatermark(WatermarkMs) override { return arrow::Status::OK(); }
  };

  std::shared_ptr<const WindowedPlan> plan_;
  arrow::MemoryPool* pool_;
  const TaskStateBudget budget_;
  // Where window state spills past the budget (one directory per instance, removed with it).
  SpillDirectory spill_;
  std::unique_ptr<KeyHasher> hasher_;  // of the input's keys; null without keys
  std::vector<uint64_t> hashes_;
  int64_t next_spill_id_ = 0;  // names the spill files of windows and session generations
  std::unique_ptr<Operator> late_sink_;
  NoOutput no_output_;
  WatermarkMs watermark_ = kNoWatermark;
  std::map<int64_t, Window> windows_;  // by start (= by end: one size)
  std::vector<SessionBatch> sessions_;
  int64_t session_bytes_ = 0;  // SessionBatch::bytes() of sessions_
  int64_t session_next_due_ = kEndOfTime;
  // Past the budget the buffered session rows are on disk (extended with their ticks and
  // emitted flags, SessionColumns), by key hash; null while they fit in memory.
  std::unique_ptr<SpillRuns> session_spill_;
  int64_t rows_in_ = 0;
  int64_t rows_out_ = 0;
  int64_t late_rows_ = 0;
};

// The window operator's task instance: passes batches and watermarks on.
class WindowPassThrough : public Operator {
 public:
  arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorOutput* out) override {
    rows_ += batch->num_rows();
    return out->Emit(batch);
  }
  int64_t rows_in() const override { return rows_; }
  int64_t rows_out() const override { return rows_; }

 private:
  int64_t rows_ = 0;
};

arrow::Status CheckWindowColumns(const arrow::Schema& input) {
  for (const char* name : {kWindowStart, kWindowEnd}) {
    if (input.GetFieldIndex(name) >= 0 || !input.GetAllFieldsByName(name).empty()) {
      return arrow::Status::Invalid("its input has a column named '", name,
                                    "', which the window's aggregate adds: rename it (project) "
                                    "before the window");
    }
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<std::string> WindowTimeColumn(const WindowParams& params,
                                            const OperatorPlanContext& context) {
  if (params.time == TimeDomain::kProcessingTime) return std::string();
  // The watermarks that fire the windows come from the sources' event-time columns. A source
  // that declares none sends no watermark: an unbounded one would hold the windows forever; a
  // bounded one (a lookup table joined in, a file read without event time) holds them until it
  // ends, which is right: it says nothing about time before then.
  const OperatorPlanContext::SourceEventTime* first = nullptr;
  for (const auto& source : context.sources_event_time) {
    if (source.column.empty()) {
      if (source.bounded) continue;
      return arrow::Status::Invalid(
          "an event-time window needs every unbounded source upstream to declare event_time "
          "(its watermarks fire the windows), but source '", source.source,
          "' declares none: add event_time: {column: ..., max_out_of_orderness: ...} to it, or "
          "use time: processing_time");
    }
    // The window must read the column its watermarks come from, or rows would be placed (and
    // found late) against watermarks of an unrelated time.
    if (!params.time_column.empty() && source.column != params.time_column) {
      return arrow::Status::Invalid(
          "its time_column '", params.time_column, "' is not the event-time column '",
          source.column, "' that source '", source.source,
          "' computes its watermarks on: a window must read the column its watermarks come "
          "from; drop time_column, or declare event_time: {column: ", params.time_column,
          ", ...} on the source (or use time: processing_time)");
    }
    if (first != nullptr && source.column != first->column) {
      return arrow::Status::Invalid(
          "the sources upstream declare different event-time columns ('", first->source,
          "': '", first->column, "', '", source.source, "': '", source.column,
          "'): a window needs watermarks of one column; declare event_time on the same column "
          "in every source");
    }
    if (first == nullptr) first = &source;
  }
  if (first != nullptr) return first->column;
  // Every source is bounded and declares no event time: the windows fire when the input ends,
  // on the column the window names.
  if (!params.time_column.empty()) return params.time_column;
  return arrow::Status::Invalid(
      "no source upstream declares an event-time column: declare event_time: {column: ...} on "
      "the sources, or name the window's time_column (its windows then fire at the end of the "
      "bounded input)");
}

arrow::Result<BoundOperator> BindWindow(const OperatorSpec& spec, const WindowParams& params,
                                        const std::shared_ptr<arrow::Schema>& input,
                                        const OperatorPlanContext& context) {
  ARROW_ASSIGN_OR_RAISE(std::string column, WindowTimeColumn(params, context));
  ARROW_ASSIGN_OR_RAISE(TimeColumn time, ResolveTimeColumn(*input, column));
  ARROW_RETURN_NOT_OK(SpansInTicks(params, time).status());
  ARROW_RETURN_NOT_OK(CheckWindowColumns(*input));
  BoundOperator bound;
  bound.output_schema = input;
  bound.make_operator = [](const TaskContext&) -> arrow::Result<std::unique_ptr<Operator>> {
    return std::make_unique<WindowPassThrough>();
  };
  return bound;
}

arrow::Result<BoundOperator> BindWindowedAggregate(const OperatorSpec& spec,
                                                   const AggregateParams& params,
                                                   const OperatorSpec& window,
                                                   const std::shared_ptr<arrow::Schema>& input,
                                                   const OperatorPlanContext& context,
                                                   const BindOptions& options) {
  const auto* window_params = std::get_if<WindowParams>(&window.params);
  if (window_params == nullptr) {
    return arrow::Status::Invalid("operator '", window.name, "' feeding it is not a window");
  }
  auto plan = std::make_shared<WindowedPlan>();
  plan->window = *window_params;
  plan->keys = context.input_keys;
  plan->input_schema = input;
  auto in_window = [&](const arrow::Status& status) {
    return status.WithMessage("window '", window.name, "': ", status.message());
  };
  auto column = WindowTimeColumn(*window_params, context);
  if (!column.ok()) return in_window(column.status());
  auto time = ResolveTimeColumn(*input, *column);
  if (!time.ok()) return in_window(time.status());
  plan->time = *time;
  plan->window_name = window.name;
  auto spans = SpansInTicks(*window_params, plan->time);
  if (!spans.ok()) return in_window(spans.status());
  plan->size = spans->size;
  plan->slide = spans->slide;
  plan->gap = spans->gap;
  plan->lateness = spans->lateness;
  ARROW_RETURN_NOT_OK(CheckWindowColumns(*input));
  for (const std::string& key : plan->keys) {
    const int index = input->GetFieldIndex(key);
    if (index < 0) {
      return arrow::Status::KeyError("key column '", key, "' is not a column of its input");
    }
    plan->key_indices.push_back(index);
  }
  arrow::FieldVector fields = input->fields();
  fields.push_back(arrow::field(kWindowStart, plan->time.output_type, /*nullable=*/false));
  fields.push_back(arrow::field(kWindowEnd, plan->time.output_type, /*nullable=*/false));
  plan->extended_schema = arrow::schema(std::move(fields));
  std::vector<std::string> keys = plan->keys;
  keys.push_back(kWindowStart);
  keys.push_back(kWindowEnd);
  ARROW_ASSIGN_OR_RAISE(plan->session_aggregation,
                        BoundAggregation::Bind(plan->extended_schema, keys, params.aggregates));
  plan->output_schema = plan->session_aggregation->output_schema();
  if (window_params->type != WindowType::kSession) {
    ARROW_ASSIGN_OR_RAISE(plan->aggregation,
                          BoundAggregation::Bind(input, plan->keys, params.aggregates));
    // WithWindow puts its results under output_schema: the same columns but the window's two.
    arrow::FieldVector expected = plan->output_schema->fields();
    const auto at = expected.begin() + static_cast<std::ptrdiff_t>(plan->keys.size());
    expected.erase(at, at + 2);
    auto partials = PartialAggregation::Make(input, plan->keys, params.aggregates);
    if (partials.ok() &&
        (*partials)->output_schema()->Equals(*plan->aggregation->output_schema())) {
      plan->partials = std::move(*partials);
    } else {
      plan->no_partials = partials.ok() ? std::string("its partial results differ in type")
                                        : partials.status().message();
    }
    if (!arrow::schema(expected)->Equals(*plan->aggregation->output_schema())) {
      return arrow::Status::Invalid("internal: the per-window aggregation gives (",
                                    plan->aggregation->output_schema()->ToString(),
                                    "), not the output's columns (", plan->output_schema->ToString(),
                                    ") without the window's");
    }
  }
  if (window_params->late_output) {
    const LateOutputSpec& late = *window_params->late_output;
    FileSinkParams sink{late.format, late.directory, late.csv};
    auto bound = BindFileSink(window, sink, input, options);
    if (!bound.ok()) return in_window(bound.status().WithMessage("late output: ",
                                                                  bound.status().message()));
    plan->late_output = std::move(*bound);
  }
  BoundOperator bound;
  bound.output_schema = plan->output_schema;
  bound.make_operator = [plan](const TaskContext& ctx) -> arrow::Result<std::unique_ptr<Operator>> {
    auto op = std::make_unique<WindowedAggregate>(plan, ctx);
    ARROW_RETURN_NOT_OK(op->Open(ctx));
    return std::unique_ptr<Operator>(std::move(op));
  };
  return bound;
}

}  // namespace sabot
