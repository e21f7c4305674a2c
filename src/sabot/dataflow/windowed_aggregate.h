#pragma once

// Windows (WindowParams) and the aggregate that follows one (docs/dataflow.md, "Time and
// windows").
//
// A window operator binds as a zero-copy pass-through (rows in = rows out): it only checks its
// parameters against its input (the time column) — the aggregate it feeds does the work. That
// aggregate (OperatorPlanContext::input_window set) is the windowed aggregate: per task it keeps
// the open windows' aggregation state and emits, for each window that fires, one row per key:
// the key columns, `window_start`, `window_end` (of the event-time column's type; timestamp[ms]
// for processing time; the window is [window_start, window_end)), then the aggregates
// (AggregateOutputName).
//
// Event time (the default). Windows are aligned to the Unix epoch (a 5-minute tumbling window
// starts at a multiple of 5 minutes since 1970-01-01 00:00 UTC, floored before 1970). Event
// times are compared in the column's own unit (a microsecond column's windows and sessions are
// computed in microseconds, never rounded to milliseconds); sizes, gaps and watermarks are whole
// milliseconds. A window fires when the task's
// watermark reaches its end (watermark >= window_end: no row of it can still come). Its state is
// kept until watermark >= window_end + allowed_lateness; a row arriving for a fired window in
// that time updates the window and its key's row is emitted again (when the next watermark
// arrives, or at the end of input): the last row emitted per key and window is final. A row
// arriving later than that (tumbling and sliding: the first window it belongs to ended at least
// allowed_lateness before the watermark — a sliding window's row then goes to none of its
// windows, so each row is in all of its windows or late; session: event_time + allowed_lateness
// < watermark), or without an event time (null), is a late row: counted (late_rows(), the job
// summary), and written to the late output when the window has one — never dropped silently.
// At the end of input (the end-of-time watermark) every window fires.
//
// Session windows: per key, rows closer than `gap` to each other form one session
// [first event, last event + gap); a row bridging two sessions merges them. A session fires when
// the watermark reaches its end. The rows of open sessions are buffered and the sessions
// recomputed (keys hashed with Arrow's Grouper, rows sorted per key) only when a watermark can
// close or evict one.
//
// Processing time (time: processing_time): a row belongs to the window(s) of the wall-clock time
// (system clock, ms since the epoch) at which it reaches the operator; windows fire by timer
// (Operator::NextTimer / OnTimer) when the wall clock reaches their end, and every open window
// fires at the end of input. There are no late rows. Watermarks pass through.
//
// Memory: open windows' aggregation states; with allowed_lateness > 0 also the rows of every
// window still kept (to recompute a window's rows on a late arrival); session windows buffer the
// rows of open sessions. All of it is charged to the task's state budget
// (TaskContext::state_budget_bytes, 0: no limit), counted after every batch. Past the budget it
// spills under TaskContext::spill_directory, by key hash (state_spill.h): open windows take no
// new key into memory (GraceAggregation: rows of other keys go to disk, aggregated partition by
// partition when the window fires), kept rows and buffered session rows move to disk (sessions
// are recomputed partition by partition). Never fails for want of memory while disk remains;
// state_spilled_bytes() reports the bytes written.
//
// Windows whose aggregates have a partial form (PartialAggregation, aggregate_operator.h)
// aggregate partials, finalized when they fire, so that Snapshot can write an open window's state
// as rows (and Restore read it back); otherwise Snapshot with an open window is NotImplemented,
// naming the aggregate. Parts: docs/fault-tolerance.md, "Operator state".
//
// Thread safety: the bound state is immutable and shared by the tasks; each instance is used by
// one task's thread.

#include <memory>
#include <string>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// The event-time column a window reads: the column every source upstream declares
// (context.sources_event_time), which `params.time_column`, when given, must name. Invalid,
// saying why and what to do, when the sources declare none, declare different columns, some
// source declares none (it would send no watermark and hold every window back until it ends),
// or time_column names another column (the sources' watermarks say nothing about its times).
// Processing time: "".
arrow::Result<std::string> WindowTimeColumn(const WindowParams& params,
                                            const OperatorPlanContext& context);

// The window operator `spec`: checks the time column (present, a timestamp or an integer column
// of milliseconds; not named window_start or window_end, which the aggregate adds) and the
// window's spans (size, slide, gap, allowed_lateness at most 2^61 in the column's unit, so window
// bounds fit int64; a window that would still start or end outside int64 fails Process with
// Invalid) and returns a pass-through. Errors are not yet prefixed with the operator (BindOperator does that).
arrow::Result<BoundOperator> BindWindow(const OperatorSpec& spec, const WindowParams& params,
                                        const std::shared_ptr<arrow::Schema>& input,
                                        const OperatorPlanContext& context);

// The aggregate `spec` after window operator `window` (context.input_window): groups by
// context.input_keys and the window. Binds the aggregation (BoundAggregation) and the window's
// late output (a file sink, file_sink.h, whose Finish, Commit and Abort the aggregate forwards:
// late rows are committed with the job, or removed with it). `options` gives the job id the late
// output names its temporary files after.
arrow::Result<BoundOperator> BindWindowedAggregate(const OperatorSpec& spec,
                                                   const AggregateParams& params,
                                                   const OperatorSpec& window,
                                                   const std::shared_ptr<arrow::Schema>& input,
                                                   const OperatorPlanContext& context,
                                                   const BindOptions& options = BindOptions{});

}  // namespace sabot
