#pragma once

// The console sink (ConsoleSinkParams): prints the first `max_rows` rows the operator receives
// over all its tasks to BindOptions::console (std::cout when null) as small text tables, and
// counts every row. Each printed piece is a header line naming the sink and task, the column
// names, then one line per row (values cut to 40 characters, nulls as "null"). When the last of
// its tasks finishes, one line gives the total: "<name>: <N> rows (<M> shown)".
//
// Thread safety: the tasks of one console sink share a state object. Which rows are printed is
// decided under a mutex (so exactly the first max_rows rows to arrive are shown); the text is
// formatted outside it and written with one call under a second mutex, so pieces of different
// tasks never interleave. The stream must outlive the job.
//
// Under checkpoints it is at least once: it snapshots nothing, so after a restart the rows
// after the checkpoint may be printed (and counted) again — printed text cannot be taken back
// (docs/fault-tolerance.md, "Sources and sinks").

#include <memory>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

arrow::Result<BoundOperator> BindConsoleSink(const OperatorSpec& spec,
                                             const ConsoleSinkParams& params,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options);

// Rows [0, num_rows) of `batch` as a text table (column names, then one line per row), each
// line ending in '\n'. Exposed for tests.
std::string FormatRows(const arrow::RecordBatch& batch, int64_t num_rows);

}  // namespace sabot
