#pragma once

// Job files: a dataflow job written in YAML for people (the format is docs/job-file.md), read
// into a LogicalPlan plus the options of a run. What `sabot run JOB.yaml` reads.
//
//   job: transactions-by-user
//   options: {threads: 2, memory_budget: 256MiB}
//   operators:
//     - generator_source: {table: transactions, rows: 100000}
//       parallelism: 4
//     - map:
//         columns: {amount_usd: "amount * 1.1"}
//     - key_by: [user_id]
//     - parquet_sink: out/
//
// Each entry of `operators` is one operator; its input defaults to the entry before it, so a
// linear pipeline writes no edges. Parallelism not given follows the builder's rules
// (plan_builder.h): a window takes the parallelism its aggregate names, key_by and every other
// operator its first input's, sources 1.
//
// Errors are arrow::Status::Invalid (IOError when the file cannot be read) with a message that
// starts with the place of the YAML node at fault, as compilers write it, and names the operator:
//   jobs/x.yaml:12:7: operator 'map': unknown key 'colums' (valid keys: columns)
// That holds for YAML syntax errors, unknown keys, wrong types, bad durations and sizes, bad
// parallelism, unknown inputs, cycles, expression syntax errors (placed at the expression's own
// line and column inside the file) and every LogicalPlan validation error (mapped back from its
// PlanErrorDetail to the node it is about).
//
// Pure functions of their input (ReadJobFile reads one file); safe for concurrent use.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/dataflow/logical_plan.h"

namespace sabot {

// The place of a node in a job file; 1-based line and column (0 when unknown).
struct JobFileLocation {
  int32_t line = 0;
  int32_t column = 0;
  bool operator==(const JobFileLocation&) const = default;
};

// Where the text of a YAML scalar lies in its file, so that a position inside the text (an
// expression's line:column) can be placed in the file. Exact for the first line of a plain or
// quoted scalar without escapes before the position, and for every line of a literal block
// (`|`); a folded block (`>`) is placed at its first line.
struct ScalarGeometry {
  enum Style { kUnknown, kPlain, kQuoted, kLiteralBlock, kFoldedBlock };
  Style style = kUnknown;
  // 1-based place of the text's first character (after a quote; a block's first content line).
  int32_t line = 0;
  int32_t column = 0;

  // The place of 1-based (line, column) of the text; {0, 0} when it cannot be placed.
  JobFileLocation Locate(int32_t text_line, int32_t text_column) const;
};

// An expression of a job file, as binding errors name it: operator `op`, `label` "predicate"
// or "column 'x'" (a map's column).
struct JobFileExpression {
  std::string op;
  std::string label;
  ScalarGeometry geometry;
};

// Run options of a job file (`options:`), those that are not part of the plan. Unset optionals
// leave the choice to the command line or the executor's default.
struct JobRunOptions {
  std::optional<int32_t> threads;              // worker threads, >= 1
  std::optional<int64_t> memory_budget_bytes;  // the shuffles' memory budget, >= 1 MiB
  std::string spill_directory;                 // absolute (resolved against the file); "" = default
  // What one task of a stateful operator may hold in state before it spills
  // (LocalExecutorOptions::state_budget_per_task), >= 1 KiB; unset: no limit.
  std::optional<int64_t> state_budget_bytes;
  bool progress = true;                        // show progress while the job runs
  bool operator==(const JobRunOptions&) const = default;
};

// A job file read and validated. Relative paths in it (source paths, sink directories, the
// spill directory) are resolved against the directory of the job file and stored absolute.
struct JobFile {
  // `job:`, 1 to 24 characters of [A-Za-z0-9_-] ('-' not first). Default: the file's name
  // without its extension, other characters replaced by '_', cut to 24; "job" if still invalid.
  std::string name;
  LogicalPlan plan;  // operators in file order, ids 0, 1, ...
  JobRunOptions options;
  // Parallel to plan.operators(): where each operator's entry starts (its kind key).
  std::vector<JobFileLocation> operator_locations;
  // The file as named in error messages.
  std::string display_name;
  // The filter predicates and map columns, where they are in the file.
  std::vector<JobFileExpression> expressions;

  // "file:line:col" of operator `name`'s entry; display_name alone for unknown names.
  std::string PlaceOf(std::string_view operator_name) const;
  // "file:line:col" of a binding error's position in an expression: `message` names the
  // operator ("operator 'f' ...") and, after an expression's label, a position
  // ("predicate: unknown column 'x' at 1:5"). Empty when the message has no such position or it
  // cannot be placed exactly.
  std::string PlaceOfExpressionError(std::string_view message) const;
};

// Changes applied while reading, as `sabot run --set` gives them.
struct JobFileOverrides {
  // Operator name -> parallelism, as if the entry said `parallelism: N` (then operators that
  // inherit theirs follow it). An unknown name is an error listing the operators.
  std::map<std::string, int32_t> parallelism;
};

// Reads a job file from text. `display_name` names the file in errors; `base_directory` is what
// relative paths are resolved against (empty: the current directory).
arrow::Result<JobFile> ParseJobFile(std::string_view text, std::string display_name,
                                    std::string base_directory,
                                    const JobFileOverrides& overrides = {});

// Reads the job file at `path` (at most kMaxJobFileBytes); relative paths in it are relative to
// its directory.
arrow::Result<JobFile> ReadJobFile(const std::string& path, const JobFileOverrides& overrides = {});

inline constexpr int64_t kMaxJobFileBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxJobNameLength = 24;

// Writes `plan` and `options` as a job file that ParseJobFile reads back to an equal plan:
// every operator with its name, parallelism (except key_by, which has its input's) and
// inputs written out. Paths are written as they are in the plan. Invalid for a plan that a
// job file cannot express: an operator whose input edges ask for different partitionings, a
// table_source (its table lives in the memory of the program running the plan).
arrow::Result<std::string> FormatJobFile(std::string_view name, const LogicalPlan& plan,
                                         const JobRunOptions& options = {});

// "5s", "250ms", "5m", "1h", "1m30s" -> milliseconds; Invalid naming the text otherwise.
arrow::Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "256MiB", "1GiB", "512KiB", "4096B" -> bytes.
arrow::Result<int64_t> ParseByteSize(std::string_view text);
// The shortest text ParseDuration reads back to `duration`: "5m", "1m30s", "250ms", "0ms".
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace sabot
