#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/compute/ordering.h>

#include "sabot/partition/partitioner.h"
#include "sabot/partition/row_scatter.h"

namespace sabot {

// True when RANGE partitioning can order a key column of type `type`: integers, floats, bool,
// (large) string and binary, fixed_size_binary, date32/64, time32/64, timestamp, decimal128.
//
// Order: numbers numerically (floats: -0.0 == 0.0, every NaN equal to every other and greater
// than +inf), false < true, byte strings and fixed_size_binary by unsigned bytes (shorter prefix
// first), temporal types by their integer value, decimal128 by value.
bool IsRangeKeyType(const arrow::DataType& type);

// Checks RANGE boundaries for PartitionSpec: columns named `key_columns` in order, types RANGE
// can order, no nulls, rows sorted ascending lexicographically (equal neighbours allowed).
// Invalid or TypeError naming the column, and for unsorted rows the first row out of order.
arrow::Status ValidateRangeBoundaries(const arrow::RecordBatch& boundaries,
                                      const std::vector<std::string>& key_columns);

// RANGE edges: row with key k goes to the partition i with b(i-1) <= k < b(i) (lexicographic
// over the key columns; that is, i = the number of boundaries <= k), found by binary search.
// Null key values order as the spec's null placement says: AtEnd (default) after every value,
// AtStart before every value; so a null single-column key goes to the last (AtEnd) or the first
// (AtStart) partition.
//
// The search runs a column at a time: each row keeps the range of boundaries that equal its key
// so far, and each key column narrows it with two binary searches in one typed loop. Made by
// MakePartitioner; see Partitioner for lifecycle and thread safety.
class RangePartitioner final : public Partitioner {
 public:
  static arrow::Result<std::unique_ptr<RangePartitioner>> Make(
      std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> input_schema,
      TaskIndex writer_task, arrow::MemoryPool* pool);

  // The partition id of each row of `batch` (which must have the bound schema) into
  // ids[0, batch.num_rows()).
  arrow::Status ComputePartitionIds(const arrow::RecordBatch& batch, PartitionId* ids);

 protected:
  arrow::Result<PartitionedBatch> PartitionChecked(
      const std::shared_ptr<arrow::RecordBatch>& batch) override;

 private:
  RangePartitioner(std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> schema,
                   TaskIndex writer_task)
      : Partitioner(std::move(spec), std::move(schema), writer_task) {}

  std::vector<int> key_indices_;
  std::unique_ptr<RowScatter> scatter_;
  std::vector<int32_t> high_;
  std::vector<PartitionId> ids_;
};

}  // namespace sabot
