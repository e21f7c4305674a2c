#pragma once

// The logical plan of a dataflow job: operators (each with an id, a name, a kind, a parallelism
// and the parameters of its kind) and the edges between them, with the partitioning each edge
// asks for. It is what the builder (plan_builder.h) makes, what travels as JSON
// (plan_json.h, docs/plan-format.md) and what the execution graph (execution_graph.h) expands
// into tasks and shuffles. It holds no data and runs nothing.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/dataflow/checkpoint.h"
#include "sabot/shuffle/shuffle_options.h"

namespace sabot {

// Operator ids are chosen by whoever makes the plan (the builder numbers them 0, 1, ... in the
// order it creates them); they are unique within a plan and name operators in edges.
using OperatorId = int32_t;

// The most tasks one operator may have. A larger value is almost certainly a mistake, and an
// N x M edge between two such operators already has a million channels.
inline constexpr int32_t kMaxOperatorParallelism = 1024;
// Bounds that keep a plan read from untrusted JSON small.
inline constexpr int32_t kMaxPlanOperators = 1000;
inline constexpr int32_t kMaxPlanEdges = 4000;
// Operator names: 1 to kMaxOperatorNameLength characters of [A-Za-z0-9_-], not starting with
// '-'. They appear in shuffle ids (execution_graph.h), which '.' separates.
inline constexpr size_t kMaxOperatorNameLength = 48;
// The most windows a sliding window puts one row into: ceil(size / slide). Each open window holds
// its own aggregation state, so a tiny slide under a large size multiplies state and work per
// row by this factor (10000h / 1ms would be 3.6e10 windows a row).
inline constexpr int64_t kMaxWindowsPerRow = 1024;

// ---------------------------------------------------------------------------------------------
// Parameters of each operator kind. Expressions are kept as text: the expression library parses
// and binds them against the input schema when the job runs; the plan only carries them.

// Event time of a source: the column that holds it and how late a row may be behind the
// largest event time seen so far. The source emits watermarks of max_seen - max_out_of_orderness.
struct EventTimeSpec {
  std::string column;
  std::chrono::milliseconds max_out_of_orderness{0};
  bool operator==(const EventTimeSpec&) const = default;
};

// Which table a generator source makes.
enum class GeneratorTable {
  kShuffle,       // the `sabot shuffle` table: key, payload columns (common/data_generator.h)
  kTransactions,  // user_id: int64, amount: double, event_time: timestamp[ms]
};

enum class KeyDistributionKind { kUniform, kSkewed };

// A source that generates rows. `rows` = 0 means unbounded, which needs a rate limit.
struct GeneratorSourceParams {
  GeneratorTable table = GeneratorTable::kShuffle;
  int64_t rows = 4 * 1024 * 1024;      // total over all tasks of the source; 0 = unbounded
  int64_t batch_rows = 64 * 1024;      // rows per generated batch, >= 1
  int64_t key_cardinality = 1 << 20;   // distinct keys (user ids for kTransactions), >= 1
  KeyDistributionKind distribution = KeyDistributionKind::kUniform;
  double hot_key_fraction = 0.5;       // kSkewed: share of rows with key 0, in [0, 1]
  bool string_key = false;             // kShuffle: also a key_string column
  int32_t payload_columns = 3;         // kShuffle: p0, p1, ...; 0 to 64
  uint64_t seed = 42;
  double rows_per_second = 0;          // over all tasks; 0 = as fast as possible
  std::optional<EventTimeSpec> event_time;
  bool operator==(const GeneratorSourceParams&) const = default;
};

enum class FileFormat { kParquet, kIpc, kCsv };

// CSV reading and writing options.
struct CsvFormatOptions {
  char delimiter = ',';
  bool has_header = true;  // the first line names the columns (sources) / is written (sinks)
  bool operator==(const CsvFormatOptions&) const = default;
};

// A source reading files of one format through Arrow Dataset. Each entry of `paths` is a file,
// a directory (all its files, recursively) or a glob pattern ('*', '?' in the last component).
// Files and row groups are split across the source's tasks.
struct FileSourceParams {
  FileFormat format = FileFormat::kParquet;
  std::vector<std::string> paths;
  CsvFormatOptions csv;  // kCsv only; must keep its defaults otherwise
  std::optional<EventTimeSpec> event_time;
  bool operator==(const FileSourceParams&) const = default;
};

// A source reading an in-memory Arrow table that the caller provides when the job runs, under
// the name `table` (BindOptions::tables; the Python API and the benchmarks provide theirs; a job
// file cannot carry one). The table's rows are split across the source's tasks without copying
// (table_source.h) in batches of at most `batch_rows` rows.
struct TableSourceParams {
  std::string table;
  int64_t batch_rows = 64 * 1024;  // >= 1
  std::optional<EventTimeSpec> event_time;
  bool operator==(const TableSourceParams&) const = default;
};

// An output column computed by an expression.
struct NamedExpression {
  std::string name;
  std::string expression;
  bool operator==(const NamedExpression&) const = default;
};

// Adds (or replaces, by name) the given columns; the other columns pass through.
struct MapParams {
  std::vector<NamedExpression> columns;
  bool operator==(const MapParams&) const = default;
};
// Keeps the rows for which `predicate` (a boolean expression) is true.
struct FilterParams {
  std::string predicate;
  bool operator==(const FilterParams&) const = default;
};
// A map whose function is not in the plan: the process that runs the job provides it at bind
// time under the name `function` (function_map.h, BindOptions::functions), as the Python package
// provides a Python function RecordBatch -> RecordBatch. A process that provides none (a C++
// agent, `sabot run`) refuses the plan when binding it, naming the function. Its output is the
// function's, so it passes no key partitioning on.
struct FunctionMapParams {
  std::string function;
  bool operator==(const FunctionMapParams&) const = default;
};
// Outputs exactly the given columns, in order.
struct ProjectParams {
  std::vector<NamedExpression> columns;
  bool operator==(const ProjectParams&) const = default;
};
// Partitions the stream by hash of `keys`: the edge leaving key_by is always HASH(keys).
// A logical marker: the execution graph folds it into that edge (execution_graph.h).
struct KeyByParams {
  std::vector<std::string> keys;
  bool operator==(const KeyByParams&) const = default;
};

enum class WindowType { kTumbling, kSliding, kSession };

// The clock windows are measured by: the rows' event time (watermarks fire windows), or the
// wall clock when a row reaches the window (a timer fires windows).
enum class TimeDomain { kEventTime, kProcessingTime };

// Where a window writes the rows that arrive too late for their window (later than its allowed
// lateness): files of `format` in `directory`, written and committed with the job exactly as a
// file sink's (file_sink.h).
struct LateOutputSpec {
  FileFormat format = FileFormat::kParquet;
  std::string directory;
  CsvFormatOptions csv;  // kCsv only; must keep its defaults otherwise
  bool operator==(const LateOutputSpec&) const = default;
};

// Assigns rows to windows (docs/dataflow.md, "Time and windows"). Tumbling: `size`; sliding:
// `size` and `slide`; session: `gap`. The fields a type does not use must stay zero.
struct WindowParams {
  WindowType type = WindowType::kTumbling;
  std::chrono::milliseconds size{0};
  std::chrono::milliseconds slide{0};
  std::chrono::milliseconds gap{0};
  TimeDomain time = TimeDomain::kEventTime;
  // Event time: the column holding it; empty = the event-time column every source upstream
  // declares (EventTimeSpec::column). Processing time: must be empty.
  std::string time_column;
  // Event time: how long after a window fired it still takes late rows (each one re-emits the
  // window's updated row for its key); >= 0. Processing time: must be 0.
  std::chrono::milliseconds allowed_lateness{0};
  // Event time: where rows later than the allowed lateness go (they are always counted).
  std::optional<LateOutputSpec> late_output;
  bool operator==(const WindowParams&) const = default;
};

// kFirst / kLast: the first / last non-null value in arrival order. kApproxMedian: the median
// estimated by a t-digest (Arrow's approximate_median), as float64. Semantics of every function
// (nulls, types, output types): docs/dataflow.md, "Aggregation".
enum class AggregateFunction {
  kCount,
  kSum,
  kMin,
  kMax,
  kMean,
  kCountDistinct,
  kFirst,
  kLast,
  kApproxMedian,
};

// One aggregate output column: `function` over `column` (empty `column` only for kCount: count
// of rows), named `alias` (empty = "<function>_<column>", or "count" for a row count).
struct AggregateSpec {
  AggregateFunction function = AggregateFunction::kCount;
  std::string column;
  std::string alias;
  bool operator==(const AggregateSpec&) const = default;
};

// Aggregates per key of its keyed input stream (and per window when it follows a window); over
// the whole input when the input is not keyed, which needs parallelism 1.
struct AggregateParams {
  std::vector<AggregateSpec> aggregates;
  bool operator==(const AggregateParams&) const = default;
};

// kInner: every matching (left, right) pair; kLeft / kRight / kFull: also every unmatched row of
// the left / right / either side, the other side's columns null; kSemi / kAnti: the left rows
// with at least one / without any match (left columns only); kRightSemi / kRightAnti: the same
// for right rows (right columns only). Null keys never match (docs/dataflow.md, "Joins").
enum class JoinType { kInner, kLeft, kRight, kFull, kSemi, kAnti, kRightSemi, kRightAnti };

// Which input of a join is sent whole to every join task (a BROADCAST edge, the hash table built
// once per task from it) while the other keeps its partitioning (FORWARD at equal parallelism,
// REBALANCE otherwise) instead of both being HASH-shuffled on their keys. Only the side whose
// rows the join never emits unmatched or deduplicated may be broadcast: the right side of inner,
// left, semi and anti joins, the left side of inner, right, right_semi and right_anti joins.
enum class JoinBroadcast { kNone, kLeft, kRight };

// Event-time joins, for unbounded inputs: kNone is the hash join of bounded inputs (joined at
// their end); kWindow joins rows with equal keys whose event times fall in the same tumbling
// window of `window` (aligned to the epoch); kInterval joins rows with equal keys where
// left.t - before <= right.t <= left.t + after. Both emit pairs as they meet and evict state by
// the task's watermark (docs/dataflow.md, "Joins").
enum class JoinTime { kNone, kWindow, kInterval };

// Joins input 0 (left) with input 1 (right) on left_keys[i] == right_keys[i].
struct JoinParams {
  std::vector<std::string> left_keys;
  std::vector<std::string> right_keys;
  JoinType how = JoinType::kInner;
  JoinBroadcast broadcast = JoinBroadcast::kNone;
  // Event-time joins (kWindow, kInterval): inner only, never broadcast. left_time / right_time
  // name each side's event-time column (timestamp of any unit, or int64 milliseconds); the
  // durations a kind does not use stay zero.
  JoinTime time = JoinTime::kNone;
  std::string left_time;
  std::string right_time;
  std::chrono::milliseconds window{0};  // kWindow: > 0
  std::chrono::milliseconds before{0};  // kInterval: >= 0
  std::chrono::milliseconds after{0};   // kInterval: >= 0
  bool operator==(const JoinParams&) const = default;
};

// Whether `how` may broadcast `side` (JoinBroadcast); kNone is always allowed.
bool JoinMayBroadcast(JoinType how, JoinBroadcast side);

// A sink writing one file per task into `directory` (written under a temporary name, renamed
// when the task finishes).
struct FileSinkParams {
  FileFormat format = FileFormat::kParquet;
  std::string directory;
  CsvFormatOptions csv;  // kCsv only; must keep its defaults otherwise
  bool operator==(const FileSinkParams&) const = default;
};
// Prints the first `max_rows` rows it receives.
struct ConsoleSinkParams {
  int64_t max_rows = 20;
  bool operator==(const ConsoleSinkParams&) const = default;
};
// Keeps every row in memory for the caller (tests, the Python API), under the operator's name.
struct CollectSinkParams {
  bool operator==(const CollectSinkParams&) const = default;
};
// Checks what a shuffle of the generated `sabot shuffle` table delivered: its one input edge
// comes straight from a generator_source of the shuffle table, and the sink verifies, against an
// independent computation, that every generated row arrived exactly once, unaltered, at the task
// its edge sends it to (verify_sink.h). `sabot shuffle` is this job; keeps nothing.
struct VerifySinkParams {
  bool operator==(const VerifySinkParams&) const = default;
};

// The parameters decide the kind (OperatorKindOf); a FileSourceParams / FileSinkParams makes a
// parquet, ipc or csv source / sink after its format.
using OperatorParams =
    std::variant<GeneratorSourceParams, FileSourceParams, TableSourceParams, MapParams,
                 FilterParams, ProjectParams, KeyByParams, WindowParams, AggregateParams,
                 JoinParams, FileSinkParams, ConsoleSinkParams, CollectSinkParams,
                 VerifySinkParams, FunctionMapParams>;

enum class OperatorKind {
  kGeneratorSource,
  kParquetSource,
  kIpcSource,
  kCsvSource,
  kTableSource,
  kMap,
  kFilter,
  kProject,
  kKeyBy,
  kWindow,
  kAggregate,
  kJoin,
  kParquetSink,
  kIpcSink,
  kCsvSink,
  kConsoleSink,
  kCollectSink,
  kVerifySink,
  kFunctionMap,
};

OperatorKind OperatorKindOf(const OperatorParams& params);
bool IsSource(OperatorKind kind);
bool IsSink(OperatorKind kind);
// The format of a parquet, ipc or csv source or sink; nullopt for every other kind.
std::optional<FileFormat> FileFormatOf(OperatorKind kind);
// The kind's name in plans and explain output: "generator_source", "parquet_source",
// "table_source", "map", "function_map", "key_by", "window", "aggregate", "join", "parquet_sink", ...
std::string_view OperatorKindName(OperatorKind kind);
arrow::Result<OperatorKind> ParseOperatorKind(std::string_view name);

// Names of the enums above as they appear in plans: "shuffle"/"transactions",
// "uniform"/"skewed", "parquet"/"ipc"/"csv", "tumbling"/"sliding"/"session",
// "count"/"sum"/"min"/"max"/"mean"/"count_distinct"/"first"/"last"/"approx_median",
// "inner"/"left"/"right"/"full"/"semi"/"anti"/"right_semi"/"right_anti",
// "event_time"/"processing_time".
std::string_view GeneratorTableName(GeneratorTable table);
arrow::Result<GeneratorTable> ParseGeneratorTable(std::string_view name);
std::string_view KeyDistributionKindName(KeyDistributionKind kind);
arrow::Result<KeyDistributionKind> ParseKeyDistributionKind(std::string_view name);
std::string_view FileFormatName(FileFormat format);
arrow::Result<FileFormat> ParseFileFormat(std::string_view name);
std::string_view WindowTypeName(WindowType type);
arrow::Result<WindowType> ParseWindowType(std::string_view name);
std::string_view AggregateFunctionName(AggregateFunction function);
arrow::Result<AggregateFunction> ParseAggregateFunction(std::string_view name);
std::string_view JoinTypeName(JoinType type);
arrow::Result<JoinType> ParseJoinType(std::string_view name);
std::string_view JoinBroadcastName(JoinBroadcast side);  // "none", "left", "right"
arrow::Result<JoinBroadcast> ParseJoinBroadcast(std::string_view name);
std::string_view JoinTimeName(JoinTime time);  // "none", "window", "interval"
arrow::Result<JoinTime> ParseJoinTime(std::string_view name);
std::string_view TimeDomainName(TimeDomain domain);
arrow::Result<TimeDomain> ParseTimeDomain(std::string_view name);

// The output name of an aggregate: its alias, or the default described at AggregateSpec.
std::string AggregateOutputName(const AggregateSpec& spec);

// One operator of a plan.
struct OperatorSpec {
  OperatorId id = 0;
  std::string name;
  int32_t parallelism = 1;
  OperatorParams params;

  OperatorKind kind() const { return OperatorKindOf(params); }
  bool operator==(const OperatorSpec&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Edges.

// The partitioning an edge asks for. kNone lets the execution graph choose (its rules are in
// execution_graph.h); the others are requests it honours or, where they cannot hold, that
// validation rejects.
enum class PartitioningKind { kNone, kHash, kRebalance, kBroadcast, kRange, kForward };
std::string_view PartitioningKindName(PartitioningKind kind);  // "none", "hash", ...
arrow::Result<PartitioningKind> ParsePartitioningKind(std::string_view name);

// A RANGE boundary value; its Arrow type is resolved against the key column when the job runs
// (integers and floats against numeric columns, strings against string columns).
using BoundaryValue = std::variant<int64_t, double, std::string>;

struct PartitioningRequest {
  PartitioningKind kind = PartitioningKind::kNone;
  // kHash and kRange: the key columns (non-empty, distinct); empty otherwise.
  std::vector<std::string> keys;
  // kRange only, optional: parallelism(to) - 1 rows of keys.size() values each, sorted
  // ascending. Empty is a valid plan, but binding the job refuses it today (NotImplemented):
  // sampling the data for boundaries is not done yet (job_binding.h).
  std::vector<std::vector<BoundaryValue>> boundaries;
  bool operator==(const PartitioningRequest&) const = default;

  static PartitioningRequest None() { return {}; }
  static PartitioningRequest Hash(std::vector<std::string> keys) {
    return {PartitioningKind::kHash, std::move(keys), {}};
  }
  static PartitioningRequest Rebalance() { return {PartitioningKind::kRebalance, {}, {}}; }
  static PartitioningRequest Broadcast() { return {PartitioningKind::kBroadcast, {}, {}}; }
  static PartitioningRequest Forward() { return {PartitioningKind::kForward, {}, {}}; }
  static PartitioningRequest Range(std::vector<std::string> keys,
                                   std::vector<std::vector<BoundaryValue>> boundaries = {}) {
    return {PartitioningKind::kRange, std::move(keys), std::move(boundaries)};
  }
};

// Data flows from operator `from` into input `input` of operator `to` (0 for every operator but
// a join, whose inputs are 0 = left and 1 = right). Several edges into the same input of one
// operator are a union of those streams.
struct EdgeSpec {
  OperatorId from = 0;
  OperatorId to = 0;
  int32_t input = 0;
  PartitioningRequest partitioning;
  bool operator==(const EdgeSpec&) const = default;
};

// Job-wide choices.
struct PlanOptions {
  // How every shuffle edge of the job runs (DESIGN.md, "Two shuffle modes").
  ShuffleMode shuffle_mode = ShuffleMode::kPipelined;
  // Whether FORWARD-connected operators are chained into one task (execution_graph.h).
  bool chaining = true;
  // An input channel of a task that sends nothing (no row, no watermark) for this long is idle:
  // it stops holding the task's watermark back until it sends again (docs/dataflow.md, "Idle
  // inputs"). 0 (the default): never idle, a silent input holds the watermark.
  std::chrono::milliseconds idle_timeout{0};
  // Checkpoints and the restart strategy (checkpoint.h, docs/fault-tolerance.md); off by
  // default.
  CheckpointOptions checkpoint;
  // Lineage recovery of a distributed batch job (every edge blocking, no checkpoints;
  // docs/fault-tolerance.md, "Batch jobs: lineage recovery"): a lost agent's work runs again
  // instead of failing the job. Off by default: with it on, a reader holds each remote stream in
  // memory until the stream is complete (outside the memory budget), so that nothing of an attempt
  // lost half way is read.
  bool lineage_recovery = false;
  bool operator==(const PlanOptions&) const = default;
};

// ---------------------------------------------------------------------------------------------

// Where in a plan a validation error is: the operator or edge (by position in the vectors given
// to LogicalPlan::Make) and the field ("parallelism", "params.size_ms", "partitioning"; empty
// when the error is about the whole operator or edge). Attached to the Invalid statuses of
// LogicalPlan::Validate, so readers of other forms (plan_json.cc) can point at their own text.
// Immutable; safe to share across threads.
class PlanErrorDetail : public arrow::StatusDetail {
 public:
  static constexpr const char* kTypeId = "sabot::PlanErrorDetail";

  PlanErrorDetail(std::optional<size_t> operator_index, std::optional<size_t> edge_index,
                  std::string field)
      : operator_index_(operator_index), edge_index_(edge_index), field_(std::move(field)) {}

  const char* type_id() const override { return kTypeId; }
  // "operators[2].params.size_ms", "edges[0].partitioning", ...
  std::string ToString() const override;

  const std::optional<size_t>& operator_index() const { return operator_index_; }
  const std::optional<size_t>& edge_index() const { return edge_index_; }
  const std::string& field() const { return field_; }

  // The detail attached to `status`, or nullptr when it has none.
  static const PlanErrorDetail* FromStatus(const arrow::Status& status);

 private:
  std::optional<size_t> operator_index_;
  std::optional<size_t> edge_index_;
  std::string field_;
};

// An immutable, validated logical plan.
//
// Made by Make, which checks every rule of Validate, so every LogicalPlan that exists is valid.
// Operators keep the order they were given in (the builder's creation order); edges too.
// Immutable after Make: safe to share and read from any thread; cheap enough to copy.
class LogicalPlan {
 public:
  // Validates and builds a plan. Invalid, naming the operator (and the parameter or edge), for
  // the first rule broken; see Validate.
  static arrow::Result<LogicalPlan> Make(std::vector<OperatorSpec> operators,
                                         std::vector<EdgeSpec> edges, PlanOptions options = {});

  // Checks, in this order: operator count and edge count bounds; per operator: id >= 0 and
  // unique, name grammar and uniqueness, 1 <= parallelism <= kMaxOperatorParallelism, the
  // parameters of its kind; per edge: both ends exist, no self-loop, input index valid for the
  // target (join: 0 or 1; others: 0), the partitioning request well-formed (keys, boundaries
  // count and order, FORWARD only between equal parallelism); structure: sources have no inputs,
  // every other operator has inputs, sinks have no outputs, every other operator has outputs, a
  // join has exactly one edge into each of its two inputs, no cycles (naming the operators of
  // one); keys: key_by's parallelism equals its inputs', its outgoing edges ask for nothing or
  // for HASH on its own keys, window and aggregate read a keyed stream (or have parallelism 1)
  // and their keyed input edges do not ask for a partitioning that breaks the keys, aggregate
  // output names are unique and differ from the key columns, join input edges ask for nothing
  // or for HASH on that side's keys, and a key_by feeding a join keys by that side's keys
  // (a broadcast join: its broadcast input's edge asks for nothing or BROADCAST and comes from
  // no key_by, its other input's edge asks for anything but BROADCAST); a join may broadcast
  // only the side JoinMayBroadcast allows. The plan must have at least one source and one sink.
  // Errors about one operator or edge carry a PlanErrorDetail locating it.
  static arrow::Status Validate(const std::vector<OperatorSpec>& operators,
                                const std::vector<EdgeSpec>& edges, const PlanOptions& options);
  arrow::Status Validate() const { return Validate(operators_, edges_, options_); }

  const std::vector<OperatorSpec>& operators() const { return operators_; }
  const std::vector<EdgeSpec>& edges() const { return edges_; }
  const PlanOptions& options() const { return options_; }

  // The operator with id `id`; nullptr when there is none. Constant time.
  const OperatorSpec* FindOperator(OperatorId id) const;
  // Indexes into edges() of the edges into / out of operator `id` (empty for unknown ids),
  // inputs sorted by input index then plan order; outputs in plan order. Constant time.
  const std::vector<size_t>& InputEdges(OperatorId id) const;
  const std::vector<size_t>& OutputEdges(OperatorId id) const;
  // Operator ids in a topological order: sources first; ties broken by plan order, so the order
  // is deterministic.
  const std::vector<OperatorId>& topological_order() const { return topological_order_; }
  // The key columns the output stream of operator `id` is partitioned by: key_by's keys, passed
  // on by a window whose inputs all carry the same keys, and by a filter, a map that assigns no
  // key column, or a project that outputs each key column as a plain reference under its own
  // name (the rows stay where their keys belong); empty for every other operator.
  const std::vector<std::string>& OutputKeys(OperatorId id) const;

  bool Equals(const LogicalPlan& other) const {
    return operators_ == other.operators_ && edges_ == other.edges_ && options_ == other.options_;
  }

 private:
  LogicalPlan() = default;

  std::vector<OperatorSpec> operators_;
  std::vector<EdgeSpec> edges_;
  PlanOptions options_;
  std::optional<size_t> PositionOf(OperatorId id) const;

  std::vector<OperatorId> topological_order_;
  std::unordered_map<OperatorId, size_t> position_;  // id -> index in operators_
  // Parallel to operators_.
  std::vector<std::vector<std::string>> output_keys_;
  std::vector<std::vector<size_t>> inputs_;
  std::vector<std::vector<size_t>> outputs_;
};

}  // namespace sabot
