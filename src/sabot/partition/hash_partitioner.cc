#include "sabot/partition/hash_partitioner.h"

namespace sabot {

arrow::Result<std::unique_ptr<HashPartitioner>> HashPartitioner::Make(
    std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> input_schema,
    TaskIndex writer_task, arrow::MemoryPool* pool) {
  if (spec->edge_type() != EdgeType::kHash) {
    return arrow::Status::Invalid("HashPartitioner needs a HASH spec, got ", spec->ToString());
  }
  std::unique_ptr<HashPartitioner> partitioner(
      new HashPartitioner(spec, input_schema, writer_task));
  ARROW_ASSIGN_OR_RAISE(partitioner->hasher_, KeyHasher::Make(spec->key_columns(), *input_schema));
  ARROW_ASSIGN_OR_RAISE(partitioner->scatter_, RowScatter::Make(spec->num_partitions(), pool));
  return partitioner;
}

arrow::Status HashPartitioner::ComputePartitionIds(const arrow::RecordBatch& batch,
                                                   PartitionId* ids) {
  const int64_t n = batch.num_rows();
  hashes_.resize(static_cast<size_t>(n));
  ARROW_RETURN_NOT_OK(hasher_->Hash(batch, hashes_.data()));
  const uint64_t* hashes = hashes_.data();
  const int32_t num_partitions = spec().num_partitions();
  for (int64_t i = 0; i < n; ++i) ids[i] = HashToPartition(hashes[i], num_partitions);
  return arrow::Status::OK();
}

arrow::Result<PartitionedBatch> HashPartitioner::PartitionChecked(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  const int64_t n = batch->num_rows();
  ids_.resize(static_cast<size_t>(n));
  counts_.resize(static_cast<size_t>(spec().num_partitions()));
  PartitionId* ids = ids_.data();
  int64_t* counts = counts_.data();
  ARROW_RETURN_NOT_OK(hasher_->HashToPartitions(*batch, spec().num_partitions(), ids, counts));
  PartitionedBatch out;
  ARROW_ASSIGN_OR_RAISE(out.batches, scatter_->ScatterCounted(batch, ids, counts));
  return out;
}

}  // namespace sabot
