#pragma once

// The generator source (GeneratorSourceParams): the `sabot shuffle` table
// (common/data_generator.h) or the transactions table, split across the source's tasks, with an
// optional rate limit and event-time watermarks. docs/dataflow.md describes both tables.
//
// Splitting. The table is cut into batches of `batch_rows` rows (the last one possibly shorter).
// Bounded (`rows` > 0): task k of P takes the contiguous batches [k*B/P, (k+1)*B/P) of the B
// batches, so the tasks together yield exactly `rows` rows, each once; for the shuffle table with
// B a multiple of P this is exactly what writer k of `sabot shuffle` writes. Unbounded
// (`rows` = 0, which needs a rate): task k takes batches k, k+P, k+2P, ... until cancelled.
//
// Rate. `rows_per_second` is over all tasks: each task paces itself at rows_per_second / P,
// emitting slices of about a tenth of a second of rows and answering Step::kWait with the time
// its next slice is due in between.
//
// The transactions table: row r (0-based, over the whole table) has
//   user_id    = GeneratedKey(options, r) — the shuffle table's key for the same seed,
//                cardinality and distribution;
//   amount     = a deterministic value in [0, 10000) with two decimals;
//   event_time = kTransactionsEpochMs + r - jitter(r) ms, jitter in [0, kTransactionsMaxDisorderMs]
// so event time advances by one millisecond per row, out of order by at most
// kTransactionsMaxDisorderMs: with max_out_of_orderness >= that bound no row is ever behind a
// watermark. Everything is a pure function of (params, r).
//
// Checkpoints (checkpoint.h): a reader's snapshot is its position (the batch being sliced, the
// rows of it emitted, rows emitted) and its watermark state; Restore regenerates that batch and
// continues at that row, so a restored reader yields exactly the batches and watermarks that
// followed the snapshot (docs/fault-tolerance.md, "Sources and sinks"). A rate limit paces again
// from the restart on.

#include <cstdint>
#include <memory>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/common/data_generator.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// 2024-01-01T00:00:00Z, the event time of transactions row 0 (before its jitter).
inline constexpr int64_t kTransactionsEpochMs = 1704067200000;
// How far a transactions row's event time may be behind the one of a row before it.
inline constexpr int64_t kTransactionsMaxDisorderMs = 2000;

// The data generator options of the shuffle table `params` describes (and of the user ids of
// the transactions table).
DataGeneratorOptions ShuffleTableOptions(const GeneratorSourceParams& params);
// The inverse: the params of a generator source of the shuffle table `options` describes, with
// `rows` rows (rate, event time: none).
GeneratorSourceParams ShuffleTableParams(const DataGeneratorOptions& options, int64_t rows);

// The schema of the table `params` describes.
std::shared_ptr<arrow::Schema> GeneratorSchema(const GeneratorSourceParams& params);

// Rows [first_row, first_row + num_rows) of the table, as one batch. Requires first_row to be a
// multiple of params.batch_rows and num_rows <= params.batch_rows for the shuffle table (the
// rows of one of its batches); any range for the transactions table.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> GenerateTableRows(
    const GeneratorSourceParams& params, int64_t first_row, int64_t num_rows,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

// The batches task `subtask` of `parallelism` yields of a bounded table: [begin, end).
struct BatchRange {
  int64_t begin = 0;
  int64_t end = 0;
};
BatchRange GeneratorTaskBatches(const GeneratorSourceParams& params, int32_t subtask,
                                int32_t parallelism);

// Checks the parameters (and the event-time column against the table's schema) and returns the
// source's schema and a factory of readers. Errors are not yet prefixed with the operator
// (BindOperator does that).
arrow::Result<BoundOperator> BindGeneratorSource(const OperatorSpec& spec,
                                                 const GeneratorSourceParams& params);

}  // namespace sabot
