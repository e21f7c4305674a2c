#pragma once

// The table source (TableSourceParams): an in-memory arrow::Table that the program running the
// plan provides under a name (BindOptions::tables, a ProvidedTables), read by the source's tasks
// without copying. The Python API hands its tables to jobs this way, and the benchmarks run
// Sabot on the same in-memory data as the engines they compare with. docs/dataflow.md,
// "Table source".
//
// Splitting. The table's N rows are cut into P contiguous ranges: task k of P reads rows
// [k*N/P, (k+1)*N/P), in table order, so the tasks together read every row exactly once and
// their shares differ by at most one row; the split depends only on N and P.
//
// Batches. Each batch is a zero-copy slice of the table: at most `batch_rows` rows, never across
// a chunk boundary of any column (the cuts arrow::TableBatchReader makes), and never across a
// task's range. One batch per SourceReader::Next() call; no row is copied and nothing is
// allocated from the job's memory pool: the table's memory is its provider's (the bound
// operator keeps a reference to the table, so it outlives every task).
//
// Event time. With an event-time column (checked at bind time: KeyError, TypeError), a
// watermark step follows each batch that advanced the task's watermark, as for the other sources
// (watermark_generator.h).
//
// Checkpoints (checkpoint.h): a reader's snapshot is the next row, with the task's row range and
// the table's row count (a restarted job must provide the same table), the rows emitted and the
// watermark state; Restore continues from that row (docs/fault-tolerance.md).
//
// The bound state (the table, its cut into batches, the schema) is immutable and shared by the
// tasks; each reader is used by one thread at a time.

#include <cstdint>

#include <arrow/result.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// The rows task `subtask` of `parallelism` reads of a table of `num_rows` rows: [begin, end).
struct TableRowRange {
  int64_t begin = 0;
  int64_t end = 0;
};
TableRowRange TableSourceTaskRows(int64_t num_rows, int32_t subtask, int32_t parallelism);

// Finds the table `params.table` in options.tables, checks the event-time column against its
// schema and returns the source's schema (the table's) and a factory of readers. Invalid when
// no tables were provided, KeyError when this one was not (naming those that were). Errors are
// not yet prefixed with the operator (BindOperator does that).
arrow::Result<BoundOperator> BindTableSource(const OperatorSpec& spec,
                                             const TableSourceParams& params,
                                             const BindOptions& options);

}  // namespace sabot
