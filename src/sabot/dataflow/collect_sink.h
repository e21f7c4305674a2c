#pragma once

// The collect sink (CollectSinkParams): every batch it receives is copied out of the job's memory
// (the caller owns the rows after the job, when the job's budget is gone) and kept by its task;
// when the job commits (operator.h) they go into BindOptions::collected under the operator's
// name, with the task's subtask number, so CollectedOutput::Table(name) gives the rows in task
// order (for tests and the Python API); a failed job publishes nothing. Binding declares the
// sink with its input schema (an empty result is an empty table of that schema) and refuses when
// BindOptions::collected is null. Watermarks are dropped.
//
// Under checkpoints (checkpoint.h) the collected output equals a failure-free run's: Snapshot
// stages the rows since the previous snapshot for its checkpoint and puts every staged group
// not yet published into the snapshot; CheckpointComplete(id) publishes the groups of
// checkpoints <= id (CollectedOutput::AddCheckpointed, once per checkpoint); Restore(id)
// drops what the task published for later checkpoints, publishes the snapshot's groups (those
// already published are not added twice) and forgets the rows after the checkpoint, which the
// restarted job produces again; Commit publishes the rest. So rows before the last complete
// checkpoint are visible before the job ends (a job that fails for good keeps them). One instance per task, used by one
// thread at a time; CollectedOutput itself is thread-safe.

#include <memory>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// `copy_out`: each batch is copied into the default pool, so what the caller keeps never views
// the job's shuffle memory; false keeps the batches as they arrive (zero copy), for inputs that
// cannot hold such memory (OperatorPlanContext::input_outlives_job).
arrow::Result<BoundOperator> BindCollectSink(const OperatorSpec& spec,
                                             const std::shared_ptr<arrow::Schema>& input,
                                             const BindOptions& options, bool copy_out = true);

}  // namespace sabot
