#pragma once

// The file sources (FileSourceParams): Parquet, Arrow IPC (file format) and CSV files read
// through Arrow Dataset, split across the source's tasks. docs/dataflow.md, "File sources".
//
// Paths. Each entry of `paths` is a file, a directory (every file under it, recursively) or a
// glob whose last component holds '*', '?' or '[...]' (a matching directory counts as all its
// files). Relative paths are taken from the working directory. Files and directories whose name
// starts with '.' or '_' are skipped inside directories and by globs (hidden and temporary files,
// such as a file sink's unfinished parts), as Arrow Dataset discovery does. The files found are
// sorted by path and deduplicated. A path that does not exist, a directory with no file and a
// glob that matches nothing are IOErrors naming the path.
//
// Schema. Found at bind time by reading every file's schema (Parquet and IPC footers, the first
// block of each CSV file) and unifying them (permissively: int32 and int64 make int64, a column
// missing from some files is null there). A CSV file's first line names its columns when
// `csv.has_header`; otherwise the columns are f0, f1, ...
//
// Splitting. The units of work are (file, row group) for Parquet and whole files for IPC and CSV,
// in sorted path order; task k of P reads units k, k+P, k+2P, ... Each unit is read by exactly
// one task, so the tasks together read every row once; the split is deterministic.
//
// Reading. One batch per SourceReader::Next() call (at most 64Ki rows), from the task's memory
// pool; a Parquet row group, an IPC record batch or a CSV block is the most held in memory at
// once. Batches have exactly the bound schema (columns in its order, cast where a file's type
// differs). With an event-time column, a watermark step follows each batch that advanced it
// (watermark_generator.h).
//
// Checkpoints (checkpoint.h): a reader's snapshot is the unit it reads (checked on restore by
// path, row group and the number of units: changed files are refused), the batches of it read,
// the rows emitted and the watermark state; Restore opens the unit again and skips the batches
// read (a unit's scan is deterministic), so the next batch is the one after the snapshot
// (docs/fault-tolerance.md, "Sources and sinks").
//
// The bound state (file list, units, schema) is immutable and shared by the tasks; each reader is
// used by one thread at a time.

#include <memory>
#include <string>
#include <vector>

#include <arrow/filesystem/filesystem.h>
#include <arrow/result.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// The files `paths` name, as described above: absolute, sorted, without duplicates.
arrow::Result<std::vector<std::string>> ExpandSourcePaths(
    const std::shared_ptr<arrow::fs::FileSystem>& filesystem,
    const std::vector<std::string>& paths);

// One unit of a file source's work: a file, or one row group of a Parquet file.
struct FileSourceUnit {
  std::string path;
  int row_group = -1;  // -1: the whole file
};

// The units a bound file source splits, in order (exposed for tests and explain).
arrow::Result<std::vector<FileSourceUnit>> FileSourceUnits(const FileSourceParams& params);

// Finds the files, reads their schemas, checks the event-time column and returns the source's
// schema and a factory of readers. Errors are not yet prefixed with the operator (BindOperator
// does that).
arrow::Result<BoundOperator> BindFileSource(const OperatorSpec& spec,
                                            const FileSourceParams& params);

}  // namespace sabot
