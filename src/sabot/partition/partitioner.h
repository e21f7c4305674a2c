#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type.h>

#include "sabot/common/ids.h"
#include "sabot/partition/partition_spec.h"

namespace sabot {

// The output of partitioning one batch: batches[p] holds the rows for partition p, in input
// order, or is nullptr when p gets no rows. Always spec.num_partitions() entries. The batches
// share memory with the input where they can (BROADCAST, FORWARD, all rows to one partition:
// the input batch itself) and otherwise own freshly written buffers; either way they stay valid
// after the Partitioner is gone.
struct PartitionedBatch {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;

  int32_t num_partitions() const { return static_cast<int32_t>(batches.size()); }
  // Rows in partition p (0 when batches[p] is nullptr).
  int64_t num_rows(int32_t p) const { return batches[p] ? batches[p]->num_rows() : 0; }
};

// Partitions the batches of one writer task over the partitions of one edge, as a PartitionSpec
// says. Made by MakePartitioner, bound to one input schema; stateful (REBALANCE remembers where
// its round-robin stopped; every kind keeps scratch memory to reuse).
//
// Lifecycle: MakePartitioner once per (edge, writer task), then Partition per batch, in stream
// order. Every batch must have the bound schema (field names and types; metadata is ignored),
// else Invalid naming the first differing field, and the partitioner's state is unchanged.
//
// Thread safety: not safe for concurrent use; one per task. The memory pool passed to
// MakePartitioner must outlive the partitioner; output batches do not depend on it.
class Partitioner {
 public:
  virtual ~Partitioner() = default;

  // Splits `batch`. An empty batch gives all-nullptr output. Never returns a batch that aliases
  // another partition's rows except for BROADCAST, where every partition gets `batch` itself.
  arrow::Result<PartitionedBatch> Partition(const std::shared_ptr<arrow::RecordBatch>& batch);

  const PartitionSpec& spec() const { return *spec_; }
  const std::shared_ptr<arrow::Schema>& input_schema() const { return input_schema_; }
  int32_t num_partitions() const { return spec_->num_partitions(); }
  TaskIndex writer_task() const { return writer_task_; }

 protected:
  Partitioner(std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> schema,
              TaskIndex writer_task)
      : spec_(std::move(spec)), input_schema_(std::move(schema)), writer_task_(writer_task) {}

  // Partition a non-empty batch whose schema has been checked.
  virtual arrow::Result<PartitionedBatch> PartitionChecked(
      const std::shared_ptr<arrow::RecordBatch>& batch) = 0;

 private:
  std::shared_ptr<const PartitionSpec> spec_;
  std::shared_ptr<arrow::Schema> input_schema_;
  TaskIndex writer_task_;
};

// OK when `batch_schema` has the fields of `bound` (names and types, in order); otherwise
// Invalid naming the first field that differs.
arrow::Status CheckSameFields(const arrow::Schema& bound, const arrow::Schema& batch_schema);

// Makes the partitioner for writer task `writer_task` (>= 0) of an edge partitioned as `spec`,
// for batches of `input_schema`. Key columns are bound here, once: a missing key column is
// Invalid naming it; a key column of a type the edge type cannot partition by is TypeError
// naming the column and the type; RANGE boundaries whose types differ from the key columns'
// are TypeError naming the column. `pool` provides the memory of scattered output.
arrow::Result<std::unique_ptr<Partitioner>> MakePartitioner(
    std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> input_schema,
    TaskIndex writer_task, arrow::MemoryPool* pool = arrow::default_memory_pool());

// The same, copying `spec` (a small object: its boundaries are shared).
arrow::Result<std::unique_ptr<Partitioner>> MakePartitioner(
    const PartitionSpec& spec, std::shared_ptr<arrow::Schema> input_schema, TaskIndex writer_task,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

}  // namespace sabot
