#pragma once

// Event time and watermarks of a source (docs/dataflow.md, "Event time and watermarks"): the
// event-time column is a timestamp (any unit; read as milliseconds since the epoch, rounded
// down) or an integer column holding milliseconds. After each batch a source asks the generator
// whether its watermark — the largest event time seen so far minus the bounded lateness
// (EventTimeSpec::max_out_of_orderness) — advanced, and emits it if so.
//
// The largest event time of a batch is computed with Arrow's min_max kernel (no per-row code);
// null event times are ignored.
//
// One generator per source task; not thread-safe (a task's thread uses it).

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator.h"

namespace sabot {

// The index of `spec.column` in `schema`. KeyError when it is missing (naming the available
// columns), TypeError when it is neither a timestamp nor an integer column.
arrow::Result<int> ResolveEventTimeColumn(const arrow::Schema& schema, const EventTimeSpec& spec);

class WatermarkGenerator {
 public:
  // As ResolveEventTimeColumn.
  static arrow::Result<WatermarkGenerator> Make(const arrow::Schema& schema,
                                                const EventTimeSpec& spec);

  // Takes the event times of `batch` (which has the schema given to Make) into account. Returns
  // the new watermark when it advanced past the last one returned, nullopt otherwise.
  arrow::Result<std::optional<WatermarkMs>> Observe(const arrow::RecordBatch& batch);

  // The largest event time seen (ms), kNoWatermark before any.
  int64_t max_event_time() const { return max_event_time_; }
  // The last watermark returned by Observe, kNoWatermark before any.
  WatermarkMs watermark() const { return watermark_; }
  // Continues from the state a checkpoint recorded (max_event_time(), watermark() of the
  // generator whose source task snapshotted): a restarted source's watermark never goes back.
  void Rewind(int64_t max_event_time, WatermarkMs watermark) {
    max_event_time_ = max_event_time;
    watermark_ = watermark;
  }

 private:
  WatermarkGenerator(int column, int64_t unit_divisor, int64_t lateness_ms)
      : column_(column), unit_divisor_(unit_divisor), lateness_ms_(lateness_ms) {}

  int column_;
  int64_t unit_divisor_;  // column units per millisecond (1 for ms and integers)
  int64_t lateness_ms_;
  int64_t max_event_time_ = kNoWatermark;
  WatermarkMs watermark_ = kNoWatermark;
};

// What every source task does with watermarks (the generator, file and table sources): after
// each batch it emits (Observe), the watermark that batch advanced to becomes the task's next
// step (TakePending), before any further batch. Without an event-time column it does nothing.
// Not thread-safe (a task's thread uses it).
class SourceWatermarks {
 public:
  // For task `ctx` of a source of `schema` with `event_time`: Invalid when ctx is not one of
  // the source's tasks (naming `source`, e.g. "file source"), else as WatermarkGenerator::Make.
  static arrow::Result<SourceWatermarks> Make(std::string_view source, const TaskContext& ctx,
                                              const arrow::Schema& schema,
                                              const std::optional<EventTimeSpec>& event_time);

  // Takes `batch` (about to be emitted) into account.
  arrow::Status Observe(const arrow::RecordBatch& batch);
  // The watermark step due before the next batch, if a batch advanced the watermark.
  std::optional<SourceReader::Step> TakePending();

  // What a source task's snapshot records of its watermarks (checkpoint.h), between two Next
  // calls: the generator's largest event time and last watermark, and the watermark step due
  // but not yet taken (kNoWatermark: none). All kNoWatermark without an event-time column.
  // Rewind (before the first Next of a restarted task) continues from it: the pending step is
  // taken first, then the watermark only advances past the restored one, so downstream sees
  // exactly the watermarks a failure-free run sends after the checkpoint's barrier.
  struct State {
    int64_t max_event_time = kNoWatermark;
    WatermarkMs watermark = kNoWatermark;
    WatermarkMs pending = kNoWatermark;
  };
  State state() const;
  void Rewind(const State& state);

 private:
  explicit SourceWatermarks(std::optional<WatermarkGenerator> generator)
      : generator_(std::move(generator)) {}

  std::optional<WatermarkGenerator> generator_;
  std::optional<WatermarkMs> pending_;
};

}  // namespace sabot
