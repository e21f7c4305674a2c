#pragma once

// The keyed aggregate without a window (AggregateParams on a stream that did not go through a
// window): groups by the keys its input stream is partitioned by (OperatorPlanContext::
// input_keys; none = one global group, which the plan runs at parallelism 1) with the functions
// of AggregateSpec, on GroupedAggregation (grouped_aggregation.h). docs/dataflow.md,
// "Aggregation", is the user's guide.
//
// Bounded input (every source upstream ends): one row per key seen by the task, emitted at
// Finish (end of input); columns = BoundAggregation::output_schema() (keys, then one column per
// aggregate). A global aggregate emits one row even without input. A state that grows past
// TaskContext::state_budget_bytes spills (grace hash aggregation): it aggregates only the keys
// it has, the rows of new keys go by key hash to Arrow IPC files in a directory of its own under
// TaskContext::spill_directory, aggregated partition by partition at Finish (again spilling when
// a partition outgrows the budget); the directory is removed at Finish and Abort.
//
// Unbounded input: an updating result, as a changelog emitted after every input batch: for each
// key the batch touched, a row with the key's previous result marked "-U" (retract) and a row
// with its new result marked "+U" (or "+I" for a key seen for the first time). Columns: the
// keys, the aggregates, then `op` (utf8, not null: "+I", "-U" or "+U"); in a batch every "-U" row
// precedes the "+U" row of its key. The state is a partial result per key (count, sum, min, max,
// first, last; mean as a sum and a count), combined with each batch's partial results by Arrow's
// element-wise kernels; count_distinct and approx_median cannot be maintained that way and are
// refused (NotImplemented, suggesting a window), as is the mean of a decimal column. With a state
// budget and keys, that state is split by key hash into 16 partitions; past the budget the
// largest are written to disk, and a spilled partition's updates wait in memory (in order) until
// they hold half the budget or the input ends, when the partition is read back, updated (their
// changelogs emitted as they would have been) and written again: it never fails for want of
// memory while disk remains.
//
// Checkpoints: the bounded aggregate snapshots its state as partial results (PartialAggregation;
// NotImplemented naming the aggregate when it has none), the changelog its per-key partials and
// pending updates (docs/fault-tolerance.md, "Operator state").
//
// Watermarks pass through in both modes. Instances are used by one thread at a time; the bound
// plan they share is immutable.

#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/grouped_aggregation.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

// The changelog marker column of an aggregate over an unbounded input, and its values.
inline constexpr const char* kChangelogColumn = "op";
inline constexpr const char* kChangelogInsert = "+I";
inline constexpr const char* kChangelogRetract = "-U";
inline constexpr const char* kChangelogUpdate = "+U";

// An aggregation split into mergeable partial results (the unbounded aggregate's per-key state
// above: count, sum, min, max, first, last; mean as a sum and a count), for a state that must be
// written out and read back (a checkpoint) without Arrow's opaque kernel states: `partial()`
// aggregates input rows into keys + partial columns; `remerge()` aggregates such partial rows
// into the same schema (sums of sums and counts, min of mins, first of firsts in row order, ...),
// so partial rows of one key from several states, consumed in their order, give that key's
// partial result over all of them; Finalize gives the final columns (keys, then one per
// aggregate, as BoundAggregation::output_schema). Immutable, shared by tasks.
class PartialAggregation {
 public:
  // NotImplemented naming the aggregate for count_distinct, approx_median and the mean of a
  // non-float64 result (a decimal): they have no such partial form here.
  static arrow::Result<std::shared_ptr<const PartialAggregation>> Make(
      const std::shared_ptr<arrow::Schema>& input, const std::vector<std::string>& keys,
      const std::vector<AggregateSpec>& aggregates);

  const std::shared_ptr<const BoundAggregation>& partial() const { return partial_; }
  const std::shared_ptr<const BoundAggregation>& remerge() const { return remerge_; }
  const std::shared_ptr<arrow::Schema>& output_schema() const { return output_schema_; }
  // `partials` (of partial()'s output schema) as final results.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Finalize(const arrow::RecordBatch& partials,
                                                              arrow::MemoryPool* pool) const;

  struct Plan;  // the changelog's plan (aggregate_operator.cc)
  PartialAggregation(std::shared_ptr<const Plan> plan,
                     std::shared_ptr<const BoundAggregation> partial,
                     std::shared_ptr<const BoundAggregation> remerge,
                     std::shared_ptr<arrow::Schema> output_schema)
      : plan_(std::move(plan)),
        partial_(std::move(partial)),
        remerge_(std::move(remerge)),
        output_schema_(std::move(output_schema)) {}

 private:
  std::shared_ptr<const Plan> plan_;
  std::shared_ptr<const BoundAggregation> partial_;
  std::shared_ptr<const BoundAggregation> remerge_;
  std::shared_ptr<arrow::Schema> output_schema_;
};

// Binds an aggregate whose input is not a window (context.input_window must be null: a windowed
// aggregate is refused with NotImplemented). KeyError / TypeError / Invalid as
// BoundAggregation::Bind; NotImplemented for a function an unbounded input cannot maintain.
arrow::Result<BoundOperator> BindAggregateOperator(const OperatorSpec& spec,
                                                   const AggregateParams& params,
                                                   const std::shared_ptr<arrow::Schema>& input,
                                                   const OperatorPlanContext& context);

}  // namespace sabot
