#pragma once

// The hash join of two bounded inputs (JoinParams, docs/dataflow.md "Joins"): input 0 (left)
// and input 1 (right) are joined on left_keys[i] == right_keys[i], one join per task over the
// rows the task received: on one integer key (after widening) with the join's own hash table,
// otherwise with Acero's hash join. The execution graph brings rows with equal
// keys to the same task: both inputs HASH-partitioned on their keys into the join's
// parallelism (the HASH partitioner hashes equal values of the accepted key type pairs alike,
// docs/hashing.md), or one input broadcast to every task and the other left where it is
// (JoinParams::broadcast).
//
// Watermarks: the hash join passes none on before its end (it emits everything at Finish, and
// a watermark passed on earlier would make its output late for a window downstream); a window
// join passes W - (window - 1) on, an interval join W - max(before, after), so every pair it
// emits later has both event times at or above the watermark it passed on.
//
// Lifecycle of one task's instance: Process copies each batch it receives out of the shuffle's
// memory into the task's pool and keeps it (both inputs are buffered whole: the join needs the
// whole build side, and the task is not told when one input ends before the other); Finish runs
// the join on the calling thread (no threads of its own; the right input is the build side, the
// left is probed through it) and emits its output in batches of at most 64K rows (Acero's
// batches when Acero joins); Abort drops both inputs. An instance is used by one thread at a time (operator.h).
//
// State budget (TaskContext::state_budget_bytes, 0: no limit): the bytes of both inputs'
// buffered batches are counted; once they exceed the budget the task becomes a grace hash join.
// Both inputs, what is buffered and every later batch, are written to 16 Arrow IPC spill files
// each (state_spill.h, under TaskContext::spill_directory) by a hash of their join keys as the
// join compares them (after widening, so equal keys of both inputs share a partition); Finish
// joins the partitions one by one, splitting again (hash remixed, up to 6 levels) a partition
// whose two files still exceed the budget. A partition whose rows all fall into one
// sub-partition (a hot key: equal keys never split) is joined in memory anyway, over the budget:
// the join never fails for want of memory it could have saved by spilling. Every join type stays
// exact (a partition holds every row of its keys from both inputs). Spill files are removed as
// each partition is joined, and all of them at Finish and Abort; state_spilled_bytes() counts
// the bytes written at every level.
//
// Event-time joins charge their held rows to the state budget (TaskContext::state_budget_bytes):
// past it the held rows of both inputs move to disk by key hash (SpillRuns, state_spill.h), each
// later batch is joined with the other input's rows of its partitions read back, and watermarks
// evict on disk; back in memory once everything held was evicted. Never fails for want of memory
// while disk remains.
//
// Checkpoints: both joins snapshot the rows they hold of each input (parts "left", "right":
// grace-spilled or spilled rows read back); the event-time join also its watermarks and late
// count ("progress"). docs/fault-tolerance.md, "Operator state".
//
// Output columns: every left column, then every right column, in input order; a right column
// whose name a left column (or an earlier right column) already has is renamed
// `<name>_right` (the suffix repeated until the name is free). semi and anti give the left
// columns only, right_semi and right_anti the right columns only. Left (right) columns of
// unmatched right (left) rows of outer joins are null.
//
// Window and interval joins (JoinParams::time, unbounded or bounded inputs with event time):
// an inner join where rows also share a tumbling window (the window start is an extra key) or
// lie within [left.t - before, left.t + after] (a residual filter of the join). Process prepares
// the batch as above, drops its late rows (their window fired, or their time is below the
// watermark: the rows they could have met may be gone; late_rows() counts them), joins it at
// once with the rows the task holds of the other input (Acero, on the calling thread: that
// side is the build side for the left input's batches, the probe side for the right input's)
// and emits the pairs, then holds the batch. OnWatermark(W) evicts the held rows no later row
// can match (window join: windows ending at or before W; interval join: left rows with
// t + after < W, right rows with t < W - before) and passes W on. Finish drops what is held.
//
// Keys: null never matches (not even null). A key pair of different types is joined after
// widening both to a common type, where the HASH partitioner hashes equal values of both types
// alike: two signed or two unsigned integer types (to the wider), a signed with an unsigned one
// (to int64; not uint64 with a signed type), float32 with float64, string with large_string, binary with large_binary, a dictionary with
// its value type. Any other pair is refused at binding. The widened values are extra columns
// the join uses and drops: the output keeps the input columns' types.

#include <memory>
#include <vector>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// The join's output schema for inputs `left` and `right` (rule above); no metadata.
// KeyError for a key that is not a column of its input, TypeError for key types that cannot
// be joined, NotImplemented for a column type Acero's join does not carry (lists, structs).
arrow::Result<std::shared_ptr<arrow::Schema>> JoinOutputSchema(
    const JoinParams& params, const std::shared_ptr<arrow::Schema>& left,
    const std::shared_ptr<arrow::Schema>& right);

// Binds a join to its two input schemas (input_schemas[0] left, [1] right): checks keys and
// types (JoinOutputSchema) and, for window and interval joins, the event-time columns (KeyError,
// TypeError unless a timestamp or int64 milliseconds); refuses a hash join (time kNone) of an
// unbounded input (context.bounded_input false) with NotImplemented: it waits for the end of
// both inputs. The factory makes one
// instance per task, allocating in TaskContext::pool.
arrow::Result<BoundOperator> BindJoin(const OperatorSpec& spec, const JoinParams& params,
                                      const std::vector<std::shared_ptr<arrow::Schema>>& inputs,
                                      const OperatorPlanContext& context);

}  // namespace sabot
