#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sabot/partition/key_hash.h"
#include "sabot/partition/partitioner.h"
#include "sabot/partition/row_scatter.h"

namespace sabot {

// HASH edges: each row goes to HashToPartition(row hash of its key columns, num_partitions), as
// docs/hashing.md defines, so equal keys go to the same partition in every batch, task, process
// and machine. Rows with a null key hash with kKeyHashNull in that column: a single-column null
// key always goes to the one partition HashToPartition(CombineKeyHash(kKeyHashRowSeed,
// kKeyHashNull), n).
//
// Per batch: one hashing pass per key column (KeyHasher), the last one also mapping hashes to
// ids and counting them (vectorized for an 8-byte integer last key column without nulls on CPUs
// with AVX-512), then RowScatter. Made by MakePartitioner; see Partitioner for lifecycle and thread safety.
class HashPartitioner final : public Partitioner {
 public:
  static arrow::Result<std::unique_ptr<HashPartitioner>> Make(
      std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> input_schema,
      TaskIndex writer_task, arrow::MemoryPool* pool);

  // The partition id of each row of `batch` (which must have the bound schema) into
  // ids[0, batch.num_rows()).
  arrow::Status ComputePartitionIds(const arrow::RecordBatch& batch, PartitionId* ids);

 protected:
  arrow::Result<PartitionedBatch> PartitionChecked(
      const std::shared_ptr<arrow::RecordBatch>& batch) override;

 private:
  HashPartitioner(std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> schema,
                  TaskIndex writer_task)
      : Partitioner(std::move(spec), std::move(schema), writer_task) {}

  std::unique_ptr<KeyHasher> hasher_;
  std::unique_ptr<RowScatter> scatter_;
  std::vector<uint64_t> hashes_;
  std::vector<PartitionId> ids_;
  std::vector<int64_t> counts_;
};

}  // namespace sabot
