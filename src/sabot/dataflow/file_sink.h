#pragma once

// The file sinks (FileSinkParams): Parquet (Snappy-compressed), Arrow IPC (file format) and CSV.
// docs/dataflow.md, "File sinks".
//
// Without checkpoints, each task writes one file, `part-<subtask>.<ext>` in `directory` (ext:
// parquet, arrow, csv):
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
// Exactly once (the job takes checkpoints: OperatorPlanContext::checkpoints; checkpoint.h,
// docs/fault-tolerance.md). Output is published per checkpoint, in two phases:
//   - a task writes its rows to a pending file `.part-<subtask>-<n>.<ext>.pending` (hidden), n =
//     0, 1, 2, ... in the task's order; the file is opened at the first row after the previous
//     one closed, so there is no empty part;
//   - Snapshot(id) (the barrier of checkpoint id) closes the pending file when it holds rows and
//     records, in the snapshot, the next part number, the rows written, and every closed
//     pending file not yet published with the checkpoint that closed it;
//   - CheckpointComplete(id) publishes the pending files of checkpoints <= id: each is renamed
//     (atomically) to `part-<subtask>-<n>.<ext>`;
//   - Restore(id) (a restart from complete checkpoint id, before the first row) publishes the
//     pending files the snapshot recorded (a part already published is fine: the notification
//     may or may not have arrived before the failure), then removes the task's pending files
//     and parts numbered from the snapshot's next part on: what it wrote after the checkpoint
//     (parts too, in case the restart goes back past a newer complete checkpoint whose files
//     did not verify). The replay then writes the same rows again under the same part numbers;
//   - Finish closes the last pending file; a checkpoint taken after it (other tasks still
//     running) covers it, else Commit (a bounded job that succeeded) publishes it;
//   - Abort removes only the file being written and the one Finish closed: never a published
//     part, nor a pending file a snapshot recorded (a restart may publish it);
//   - the earlier run's parts (`part-<n>.<ext>` and `part-<n>-<m>.<ext>` of the format) are
//     removed at the first step (a batch, a checkpoint, the end) of a run that is not restored
//     — once per sink and process — together with the task's stale pending files; every task
//     takes that step before the run's first checkpoint can complete, so nothing of this run is
//     removed. A restored run removes nothing of the earlier run: its first attempt did. So
//     PrepareCommit removes nothing.
// A restart therefore never leaves duplicate or partial published output, and part n of task k
// holds the same rows as in a run without failure for every part published before the
// checkpoint the job restarted from. Two jobs must not write one directory at the same time.
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
// Exactly once: "part-<subtask>-<sequence>.<ext>", a published part, and
// ".part-<subtask>-<sequence>.<ext>.pending", the pending file it is renamed from.
std::string FileSinkCheckpointPartName(FileFormat format, int32_t subtask, int64_t sequence);
std::string FileSinkPendingName(FileFormat format, int32_t subtask, int64_t sequence);

// Checks the parameters and creates the directory. `exactly_once`: the job takes checkpoints
// (see above). Errors are not yet prefixed with the operator (BindOperator does that).
arrow::Result<BoundOperator> BindFileSink(const OperatorSpec& spec, const FileSinkParams& params,
                                          const std::shared_ptr<arrow::Schema>& input,
                                          const BindOptions& options, bool exactly_once = false);

}  // namespace sabot
