#pragma once

// A job's execution graph bound to real schemas: every operator bound (operator_binding.h) in
// topological order, each fed the output schemas of its inputs, and every shuffle edge turned
// into the ShuffleDescriptor its writers and readers register. Whoever runs tasks — the local
// executor, an agent of the distributed runtime — starts from a BoundJob, so binding errors
// (unknown columns, type mismatches, missing files, unions of different schemas) surface before
// any task runs, naming the operator.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/operator_binding.h"
#include "sabot/shuffle/shuffle_descriptor.h"

namespace sabot {

// The most characters of a job id: shuffle ids are "<job id>.<graph shuffle id>" and must stay
// valid ids (execution_graph.h).
inline constexpr size_t kMaxJobIdLength = 24;

// Immutable after BindJob; safe to share across threads. Single use: the operator factories keep
// per-job state (a verify sink's counts, a file sink's once-only cleanup of an earlier run), so
// a BoundJob runs once; bind the plan again to run it again.
struct BoundJob {
  std::string job_id;
  ExecutionGraph graph;
  // Every operator but key_by (folded), by id.
  std::unordered_map<OperatorId, BoundOperator> operators;
  // The schema of every operator's output stream, key_by included (a key_by's is its input's);
  // absent for sinks.
  std::unordered_map<OperatorId, std::shared_ptr<arrow::Schema>> output_schemas;
  // One per shuffle edge, parallel to graph.shuffle_edges(); fitted to memory_budget.
  std::vector<ShuffleDescriptor> shuffles;
  // The budget the shuffles were fitted to (BindOptions::memory_budget; 0: not fitted) and the
  // share of it the network pool needs for the job's pipelined channels (0: the default).
  int64_t memory_budget = 0;
  double network_fraction = 0;
  int64_t network_segment_size = 0;  // 0: the default
};

// Binds `plan` for a job named `options.job_id` (1 to kMaxJobIdLength characters of
// [A-Za-z0-9_-]). `shuffle_options` (mode excepted: the plan's) applies to every shuffle edge.
// Errors name the operator (or the edge: "edge 'a' -> 'b'") at fault. With
// options.memory_budget, a job whose shuffles cannot fit it is refused (OutOfMemory naming the
// edge that needs the most).
arrow::Result<std::shared_ptr<const BoundJob>> BindJob(const LogicalPlan& plan,
                                                       const BindOptions& options,
                                                       ShuffleOptions shuffle_options = {});

}  // namespace sabot
