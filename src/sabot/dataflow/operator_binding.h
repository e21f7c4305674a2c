#pragma once

// Binding an operator of a plan to the schemas of its inputs, before any task runs: every
// parameter is checked against real schemas and files (an unknown column, a type mismatch in an
// expression, a missing file fail here, naming the operator), the operator's output schema is
// computed, and a factory of task instances (operator.h) is returned.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/table.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator.h"

namespace sabot {

// The batches collect sinks gathered, by sink operator name. Safe for concurrent use.
class CollectedOutput {
 public:
  void Add(const std::string& sink, int32_t subtask, std::shared_ptr<arrow::RecordBatch> batch);
  // The rows `sink` collected as one table: subtask 0's batches in order, then subtask 1's, ...
  // KeyError for a sink that collected nothing and was never declared (Declare).
  arrow::Result<std::shared_ptr<arrow::Table>> Table(const std::string& sink) const;
  // The batches subtask `subtask` of `sink` collected, in order (empty when none).
  std::vector<std::shared_ptr<arrow::RecordBatch>> Batches(const std::string& sink,
                                                           int32_t subtask) const;
  // Declares `sink` with its schema, so Table() of a sink that received no row is an empty table.
  void Declare(const std::string& sink, std::shared_ptr<arrow::Schema> schema);
  std::vector<std::string> sinks() const;

  // Checkpoints (collect_sink.h). AddCheckpointed: the batches subtask `subtask` of `sink`
  // collected before the barrier of checkpoint `id`, published once `id` completed — once per
  // id: nothing is added when the subtask already published `id` or a later checkpoint (a
  // restarted task publishes again what its snapshot holds, which the failed attempt may have
  // published already). RewindTo: the subtask restarts from checkpoint `id`: what it published
  // for later checkpoints goes (a restart that went back past a newer complete checkpoint).
  void AddCheckpointed(const std::string& sink, int32_t subtask, CheckpointId id,
                       std::vector<std::shared_ptr<arrow::RecordBatch>> batches);
  void RewindTo(const std::string& sink, int32_t subtask, CheckpointId id);

 private:
  struct Sink {
    std::shared_ptr<arrow::Schema> schema;
    std::map<int32_t, std::vector<std::shared_ptr<arrow::RecordBatch>>> batches;  // by subtask
    // Per subtask: the checkpoint each of its batches was published for (kNoCheckpoint: by
    // Add), parallel to `batches`, and the latest checkpoint it published.
    std::map<int32_t, std::vector<CheckpointId>> checkpoints;
    std::map<int32_t, CheckpointId> published_through;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Sink> sinks_ SABOT_GUARDED_BY(mutex_);
};

// The in-memory tables table sources read (TableSourceParams), by name: the mirror of
// CollectedOutput, filled by the caller before the job is bound. The tables are shared, never
// copied: the job's source tasks read slices of them while it runs, so a table must not be
// mutated (Arrow tables are immutable) and stays alive as long as the bound job holds it.
// Safe for concurrent use.
class ProvidedTables {
 public:
  // Provides `table` under `name`, replacing an earlier table of that name. Invalid for an empty
  // name or a null table.
  arrow::Status Add(std::string name, std::shared_ptr<arrow::Table> table);
  // The table provided under `name`; KeyError naming it and the names provided otherwise.
  arrow::Result<std::shared_ptr<arrow::Table>> Get(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<arrow::Table>> tables_ SABOT_GUARDED_BY(mutex_);
};

class ProvidedFunctions;  // function_map.h

struct BindOptions {
  std::string job_id = "job";
  // Where console sinks print. Must outlive the job's tasks.
  std::ostream* console = nullptr;  // null: std::cout
  // Where collect sinks put their rows; null: collect sinks are refused.
  std::shared_ptr<CollectedOutput> collected;
  // The tables table sources read; null: table sources are refused.
  std::shared_ptr<const ProvidedTables> tables;
  // The functions function_map operators call (function_map.h); null: function maps are refused.
  std::shared_ptr<const ProvidedFunctions> functions;
  // The memory budget the job will run under: BindJob fits the shuffles to it (shuffle_fitting.h)
  // and refuses a job it cannot hold; 0: no fitting.
  int64_t memory_budget = 0;
};

// "operator '<name>' (<kind>)": how every error of binding and running names an operator (a job
// file reader finds the operator's line from it).
std::string OperatorLabel(const OperatorSpec& spec);

// What binding an operator needs to know of its place in the plan beyond its input schemas
// (BindJob fills it from the plan; tests binding one operator set what they need).
struct OperatorPlanContext {
  // The keys the operator's input stream is partitioned by (LogicalPlan::OutputKeys of the
  // operator feeding input 0): an aggregate groups by them; empty when the input is not keyed.
  std::vector<std::string> input_keys;
  // The window operator feeding input 0 (window -> aggregate: the aggregate is per window), or
  // null. Outlives the binding (it points into the plan).
  const OperatorSpec* input_window = nullptr;
  // True when every source upstream of the operator ends (files; generators with rows > 0): an
  // aggregate without a window then gives one final row per key at end of input; false when
  // some source is unbounded.
  bool bounded_input = true;
  // Every source upstream of the operator (by name, plan order) with the event-time column it
  // declares ("" when it declares none) and whether it ends: where a window finds its default
  // event-time column (windowed_aggregate.h).
  struct SourceEventTime {
    std::string source;
    std::string column;
    bool bounded = true;  // files, tables, generators with rows > 0
  };
  std::vector<SourceEventTime> sources_event_time;
  // True when every batch reaching the operator is made in its own task, by a source at the
  // head of its chain and only map, filter, project or function_map after it: no batch can then
  // hold memory of the job's shuffles (freed when the job ends), so a collect sink keeps its
  // batches as they are, without copying them out (the Python API's zero-copy collect).
  bool input_outlives_job = false;
  // True when the job takes checkpoints (PlanOptions::checkpoint enabled): a file sink then
  // writes exactly once, publishing its output per checkpoint (file_sink.h).
  bool checkpoints = false;
};

// An operator bound to its input schemas.
struct BoundOperator {
  // The schema of the batches it emits; null for sinks.
  std::shared_ptr<arrow::Schema> output_schema;
  // Exactly one is set: make_source for sources, make_operator for every other kind.
  std::function<arrow::Result<std::unique_ptr<SourceReader>>(const TaskContext&)> make_source;
  std::function<arrow::Result<std::unique_ptr<Operator>>(const TaskContext&)> make_operator;
};

// Binds `spec` given the schema of each of its inputs (input_schemas[i] for input i; empty for
// sources). Errors (KeyError, TypeError, Invalid, IOError) begin with "operator '<name>'
// (<kind>): " and keep the underlying status code. key_by is folded by the execution graph and
// never bound; a window binds as a pass-through and the aggregate after it as the windowed
// aggregate (windowed_aggregate.h, which context.input_window selects), any other aggregate as
// the keyed aggregate (aggregate_operator.h), a join with BindJoin (join_operator.h).
arrow::Result<BoundOperator> BindOperator(
    const OperatorSpec& spec, const std::vector<std::shared_ptr<arrow::Schema>>& input_schemas,
    const BindOptions& options, const OperatorPlanContext& context = {});

}  // namespace sabot
