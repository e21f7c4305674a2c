#pragma once

// Incremental hash aggregation: batches go in, one row per distinct key comes out. The kernel
// the stateful operators share: the keyed aggregate (aggregate_operator.h) keeps one per task,
// a windowed aggregate one per open window. Built on Arrow's Grouper (key -> dense group id) and
// the hash_* aggregate kernels of Arrow compute (hash_sum, hash_count, ...), driven directly
// batch by batch (init / resize / consume / merge / finalize), so nothing is buffered but the
// per-group states.
//
// Keys: one or more columns of any type the HASH partitioner supports; null is a key value of
// its own (rows with a null key form one group). Float keys are compared by value as the
// partitioner hashes them (docs/hashing.md): -0.0 and 0.0 are one key, output as 0.0, and all
// NaNs are one key, output as the canonical quiet NaN (NormalizeFloatKey). Aggregates: AggregateSpec (logical_plan.h).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "sabot/dataflow/logical_plan.h"

namespace sabot {

// `key` with every zero made +0.0 and every NaN the canonical quiet NaN when it is a float32 or
// float64 array, so that keys equal as docs/hashing.md defines them (-0.0 and 0.0 are one key,
// all NaNs are one key) have equal bits: Arrow's Grouper and Acero's hash join compare keys bit
// by bit. Any other array, or a float array holding no -0.0 and no other NaN, is returned as
// is; otherwise a copy of it whose values are allocated from `pool`. Thread-safe.
arrow::Result<std::shared_ptr<arrow::Array>> NormalizeFloatKey(
    const std::shared_ptr<arrow::Array>& key, arrow::MemoryPool* pool);

// An aggregation bound to an input schema: the key and argument columns resolved, the kernels
// chosen, the output schema computed. Immutable; shared by every task's GroupedAggregation.
class BoundAggregation {
 public:
  // KeyError for an unknown key or argument column (naming it), TypeError for a function that
  // does not apply to the column's type (sum of a string), Invalid for no aggregates, a duplicate
  // output name, or an output name equal to a key column. `keys` may be empty: one global group.
  static arrow::Result<std::shared_ptr<const BoundAggregation>> Bind(
      const std::shared_ptr<arrow::Schema>& input, std::vector<std::string> keys,
      std::vector<AggregateSpec> aggregates);

  const std::shared_ptr<arrow::Schema>& input_schema() const;
  // The key columns (input fields, in `keys` order), then one column per aggregate named
  // AggregateOutputName(spec), of the kernel's output type.
  const std::shared_ptr<arrow::Schema>& output_schema() const;
  const std::vector<std::string>& keys() const;
  const std::vector<AggregateSpec>& aggregates() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }
  explicit BoundAggregation(std::unique_ptr<Impl> impl);
  ~BoundAggregation();

 private:
  std::unique_ptr<Impl> impl_;
};

// One task's aggregation state. Not thread-safe: one task uses it. Rows are consumed in order
// (first/last are by arrival order).
class GroupedAggregation {
 public:
  static arrow::Result<std::unique_ptr<GroupedAggregation>> Make(
      std::shared_ptr<const BoundAggregation> bound,
      arrow::MemoryPool* pool = arrow::default_memory_pool());
  ~GroupedAggregation();

  // Adds the rows of `batch` (of the bound input schema) to their groups.
  arrow::Status Consume(const arrow::RecordBatch& batch);
  // Adds the rows of `batch` whose key already has a group, creating none, and returns the
  // other rows, in order, unconsumed (zero rows when every key had a group; a global
  // aggregation knows every row). What a state that may not grow (over its memory budget) does
  // while the rows of new keys go to disk.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> ConsumeKnown(
      const std::shared_ptr<arrow::RecordBatch>& batch);
  // Folds `other` (same BoundAggregation) into this one, as if its rows had been consumed here
  // after this one's; `other` is left empty. For session merges and spilled partitions.
  arrow::Status Merge(GroupedAggregation&& other);
  // The result: one row per group seen (in no particular order: Arrow's Grouper numbers the
  // new keys of a batch in its own order), columns as output_schema(). A
  // global aggregation (no keys) gives one row even with no input (count 0, sum null). The state
  // is reset: the object can consume again.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Finish();

  int64_t num_groups() const;
  // Bytes held by the grouper and the kernels' states (an estimate the operator charges to its
  // memory budget): what they allocated from `pool` and still hold. Result batches of Finish
  // share buffers with the states they came from and count here until the caller drops them
  // (they may outlive this object).
  int64_t memory_bytes() const;

 private:
  struct State;
  explicit GroupedAggregation(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace sabot
