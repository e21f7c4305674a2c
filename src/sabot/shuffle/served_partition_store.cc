#include "sabot/shuffle/served_partition_store.h"

#include <arrow/type.h>

#include "sabot/common/error_detail.h"
#include "sabot/shuffle/shuffle_manager.h"
#include "sabot/transport/protocol.h"

namespace sabot {

namespace {

Compression WireCompression(arrow::Compression::type compression) {
  switch (compression) {
    case arrow::Compression::LZ4_FRAME:
      return Compression::kLz4Frame;
    case arrow::Compression::ZSTD:
      return Compression::kZstd;
    default:
      return Compression::kNone;
  }
}

class StoreBlockIterator final : public BlockIterator {
 public:
  explicit StoreBlockIterator(std::unique_ptr<BlockStreamReader> reader)
      : reader_(std::move(reader)) {}
  arrow::Result<std::optional<SealedBlock>> Next() override { return reader_->Next(); }

 private:
  std::unique_ptr<BlockStreamReader> reader_;
};

arrow::Status CheckPartition(const ShuffleDescriptor& descriptor, int32_t partition_id) {
  return WithShuffleContext(descriptor.CheckPartition(partition_id),
                            {.shuffle_id = descriptor.shuffle_id});
}

}  // namespace

std::vector<std::string> ServedPartitionStore::ListShuffles() { return manager_->ListShuffles(); }

arrow::Result<ShuffleDescription> ServedPartitionStore::Describe(const std::string& shuffle_id) {
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager_->GetShuffle(shuffle_id));
  ShuffleDescription out;
  out.shuffle_id = shuffle_id;
  out.schema = descriptor->schema;
  out.num_partitions = descriptor->num_partitions();
  out.compression = WireCompression(descriptor->options.compression);
  out.partitions.resize(descriptor->num_partitions());
  for (int32_t p = 0; p < out.num_partitions; ++p) out.partitions[p].partition_id = p;
  for (const StreamKey& key : manager_->block_store()->ListStreams(shuffle_id)) {
    PartitionStats& stats = out.partitions[key.partition_id];
    ARROW_ASSIGN_OR_RAISE(BlockStreamStats stream, manager_->block_store()->StreamStats(key));
    stats.num_streams += 1;
    stats.num_blocks += stream.blocks;
    stats.num_rows += stream.rows;
    stats.num_bytes += stream.bytes;
  }
  return out;
}

arrow::Result<std::vector<StreamKey>> ServedPartitionStore::ListStreams(
    const std::string& shuffle_id, int32_t partition_id) {
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager_->GetShuffle(shuffle_id));
  ARROW_RETURN_NOT_OK(CheckPartition(*descriptor, partition_id));
  std::vector<StreamKey> out;
  // Ordered by writer task, then attempt: a writer task that ran again here (lineage recovery)
  // is listed with its newest attempt only, so a whole-partition read never gets two attempts of
  // one writer's stream.
  for (StreamKey& key : manager_->block_store()->ListStreams(shuffle_id)) {
    if (key.partition_id != partition_id) continue;
    if (!out.empty() && out.back().writer_task == key.writer_task) {
      out.back() = std::move(key);
    } else {
      out.push_back(std::move(key));
    }
  }
  return out;
}

arrow::Result<std::unique_ptr<BlockIterator>> ServedPartitionStore::OpenStream(
    const StreamKey& key) {
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager_->GetShuffle(key.shuffle_id));
  ARROW_RETURN_NOT_OK(CheckPartition(*descriptor, key.partition_id));
  ARROW_ASSIGN_OR_RAISE(auto reader, manager_->block_store()->OpenReader(key));
  return std::make_unique<StoreBlockIterator>(std::move(reader));
}

arrow::Status ServedPartitionStore::Append(const StreamKey& key, const arrow::Schema& schema,
                                           std::vector<SealedBlock> blocks) {
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager_->GetShuffle(key.shuffle_id));
  ARROW_RETURN_NOT_OK(CheckPartition(*descriptor, key.partition_id));
  if (!schema.Equals(*descriptor->schema, /*check_metadata=*/false)) {
    return WithShuffleContext(
        arrow::Status::Invalid("pushed schema ", schema.ToString(),
                               " differs from the shuffle's ", descriptor->schema->ToString()),
        {.shuffle_id = key.shuffle_id, .partition_id = key.partition_id});
  }
  ARROW_RETURN_NOT_OK(manager_->block_store()->AddStream(key, descriptor->schema));
  for (auto& block : blocks) {
    arrow::Status status = manager_->block_store()->Append(key, std::move(block));
    if (!status.ok()) {
      (void)manager_->block_store()->Abort(key, status);
      return status;
    }
  }
  return manager_->block_store()->Finish(key);
}

arrow::Status ServedPartitionStore::Release(const std::string& shuffle_id) {
  return manager_->Release(shuffle_id);
}

}  // namespace sabot
