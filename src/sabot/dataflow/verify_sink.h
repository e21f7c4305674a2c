#pragma once

// The verify sink (VerifySinkParams): the end of the `sabot shuffle` job. Its input edge comes
// straight from a generator_source of the shuffle table; each task checks the batches it
// receives with a GeneratedShuffleCheck shared by the sink's tasks — every row at the task its
// edge sends it to (computed independently of the partition layer, docs/hashing.md), after the
// previous row of its (writer, partition) stream, unaltered — and the job's commit checks that no
// row is missing (in a distributed job each agent checks the partitions of its tasks). A failed check fails the job, naming the partition and the row.
//
// It keeps no rows: memory O(partitions x writers) whatever the rows.
//
// Under checkpoints (checkpoint.h) the check stays exact: a task's snapshot holds the check's
// progress of its partition (per writer: the last row and the rows received); a restarted
// task restores it, so the rows the generator replays after the checkpoint are checked as
// first arrivals, and a row delivered twice across the restart is still caught.

#include <memory>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"
#include "sabot/partition/partition_spec.h"

namespace sabot {

// Binds a verify sink fed by a generator source with `generator` params and `source_parallelism`
// tasks, through an edge partitioned by `edge_spec` (FORWARD for a chained edge). Invalid when
// the generated table is not whole batches split evenly over the source's tasks, or when the
// check cannot compute the edge's partitioning independently (HASH or RANGE on a column other
// than `key`). Errors are not yet prefixed with the operator.
arrow::Result<BoundOperator> BindVerifySink(const OperatorSpec& spec,
                                            const GeneratorSourceParams& generator,
                                            int32_t source_parallelism,
                                            std::shared_ptr<const PartitionSpec> edge_spec);

}  // namespace sabot
