#pragma once

// The file sinks (FileSinkParams): Parquet (Snappy-compressed), Arrow IPC (file format) and CSV.
// docs/dataflow.md, "File sinks".
//
// Each task writes one file, `part-<subtask>.<ext>` in `directory` (ext: parquet, arrow, csv):
//   - binding creates the directory (with its parents) if missing, so an unwritable location
//     fails before any task runs; a path that exists and is not a directory is an IOError;
//   - a task writes to `.part-<subtask>.<ext>.<job_id>.tmp` in the same directory (hidden from
//     the file sources and from Arrow Dataset discovery); Finish completes and closes it;
//   - Commit (the whole job succeeded: operator.h) renames it to its final name, atomically.
//     The first Commit of the sink first removes, once, every `part-<n>.<ext>` file of its
//     format already in the directory: the output of an earlier run (other files are left
//     alone). A rerun therefore leaves exactly the new run's parts, never a mix of old and new,
//     and a failed rerun leaves the earlier run's output untouched;
//   - Abort removes the temporary file; Abort after Commit (a job whose commit failed part way)
//     removes the committed part too, so a failed job leaves nothing under a final name;
//   - when the sink's bound state goes (the job ended) and no task committed, the directories
//     binding created (the sink's and missing parents) are removed if they are still empty.
//
// CSV: `csv.delimiter`, and a header line when `csv.has_header`. The sinks write their input's
// schema as is; they emit nothing and drop watermarks. rows_in = rows_out = rows written. One
// instance per task, used by one thread at a time; instances of one sink share only the
// once-only cleanup above (thread-safe).

#include <memory>
#include <string>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// "parquet", "arrow" or "csv".
std::string_view FileSinkExtension(FileFormat format);
// "part-<subtask>.<ext>".
std::string FileSinkPartName(FileFormat format, int32_t subtask);
// ".part-<subtask>.<ext>.<job_id>.tmp", the job id with characters other than [A-Za-z0-9_-]
// replaced by '_'.
std::string FileSinkTempName(FileFormat format, int32_t subtask, const std::string& job_id);

// Checks the parameters and creates the directory. Errors are not yet prefixed with the
// operator (BindOperator does that).
arrow::Result<BoundOperator> BindFileSink(const OperatorSpec& spec, const FileSinkParams& params,
                                          const std::shared_ptr<arrow::Schema>& input,
                                          const BindOptions& options);

}  // namespace sabot
