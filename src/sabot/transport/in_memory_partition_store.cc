#include "sabot/transport/in_memory_partition_store.h"

#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/byte_size.h>

#include "sabot/transport/channel.h"

namespace sabot {

int64_t BlockBytes(const SealedBlock& block) {
  if (block.event != nullptr) return block.event->size();
  if (block.ipc_bytes != nullptr) return block.ipc_bytes->size();
  if (block.batch != nullptr) return arrow::util::TotalBufferSize(*block.batch);
  return 0;
}

namespace {

// Yields a snapshot of a stream's blocks; holds them by reference, so a Release of the shuffle
// does not pull them from under a reader.
class VectorBlockIterator : public BlockIterator {
 public:
  explicit VectorBlockIterator(std::shared_ptr<const std::vector<SealedBlock>> blocks)
      : blocks_(std::move(blocks)) {}

  arrow::Result<std::optional<SealedBlock>> Next() override {
    if (next_ >= blocks_->size()) return std::nullopt;
    return (*blocks_)[next_++];
  }

 private:
  std::shared_ptr<const std::vector<SealedBlock>> blocks_;
  size_t next_ = 0;
};

}  // namespace

arrow::Result<std::shared_ptr<InMemoryPartitionStore>> InMemoryPartitionStore::Make() {
  return std::shared_ptr<InMemoryPartitionStore>(new InMemoryPartitionStore());
}

arrow::Status InMemoryPartitionStore::RegisterShuffle(const std::string& shuffle_id,
                                                      std::shared_ptr<arrow::Schema> schema,
                                                      int32_t num_partitions,
                                                      Compression compression) {
  ARROW_RETURN_NOT_OK(ValidateId(shuffle_id, "shuffle id"));
  ARROW_RETURN_NOT_OK(ValidateCount(num_partitions, "partition count"));
  if (schema == nullptr) return arrow::Status::Invalid("shuffle '", shuffle_id, "' needs a schema");
  std::lock_guard<std::mutex> lock(mutex_);
  if (shuffles_.count(shuffle_id) > 0) {
    return arrow::Status::Invalid("shuffle '", shuffle_id, "' is already registered");
  }
  Shuffle& shuffle = shuffles_[shuffle_id];
  shuffle.schema = std::move(schema);
  shuffle.num_partitions = num_partitions;
  shuffle.compression = compression;
  return arrow::Status::OK();
}

arrow::Result<InMemoryPartitionStore::Shuffle*> InMemoryPartitionStore::FindLocked(
    const std::string& shuffle_id) {
  auto it = shuffles_.find(shuffle_id);
  if (it == shuffles_.end()) {
    return arrow::Status::KeyError("unknown shuffle '", shuffle_id, "'");
  }
  return &it->second;
}

std::vector<std::string> InMemoryPartitionStore::ListShuffles() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> ids;
  for (const auto& [id, shuffle] : shuffles_) ids.push_back(id);
  return ids;
}

arrow::Result<ShuffleDescription> InMemoryPartitionStore::Describe(const std::string& shuffle_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Shuffle * shuffle, FindLocked(shuffle_id));
  ShuffleDescription description;
  description.shuffle_id = shuffle_id;
  description.schema = shuffle->schema;
  description.num_partitions = shuffle->num_partitions;
  description.compression = shuffle->compression;
  description.partitions.resize(shuffle->num_partitions);
  for (int32_t p = 0; p < shuffle->num_partitions; ++p) description.partitions[p].partition_id = p;
  for (const auto& [key, blocks] : shuffle->streams) {
    PartitionStats& stats = description.partitions[key.partition_id];
    ++stats.num_streams;
    for (const auto& block : *blocks) {
      ++stats.num_blocks;
      stats.num_rows += block.num_rows;
      stats.num_bytes += BlockBytes(block);
    }
  }
  return description;
}

arrow::Result<std::vector<StreamKey>> InMemoryPartitionStore::ListStreams(
    const std::string& shuffle_id, int32_t partition_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Shuffle * shuffle, FindLocked(shuffle_id));
  ARROW_RETURN_NOT_OK(CheckPartitionInRange(shuffle_id, partition_id, shuffle->num_partitions));
  std::vector<StreamKey> keys;
  for (const auto& [key, blocks] : shuffle->streams) {
    if (key.partition_id == partition_id) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end(), [](const StreamKey& a, const StreamKey& b) {
    return std::tie(a.writer_task, a.writer_attempt) < std::tie(b.writer_task, b.writer_attempt);
  });
  return keys;
}

arrow::Result<std::unique_ptr<BlockIterator>> InMemoryPartitionStore::OpenStream(
    const StreamKey& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Shuffle * shuffle, FindLocked(key.shuffle_id));
  ARROW_RETURN_NOT_OK(
      CheckPartitionInRange(key.shuffle_id, key.partition_id, shuffle->num_partitions));
  auto it = shuffle->streams.find(key);
  if (it == shuffle->streams.end()) {
    return arrow::Status::KeyError("unknown stream: ", DescribeStream(key));
  }
  return std::make_unique<VectorBlockIterator>(it->second);
}

arrow::Status InMemoryPartitionStore::Append(const StreamKey& key, const arrow::Schema& schema,
                                             std::vector<SealedBlock> blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Shuffle * shuffle, FindLocked(key.shuffle_id));
  ARROW_RETURN_NOT_OK(
      CheckPartitionInRange(key.shuffle_id, key.partition_id, shuffle->num_partitions));
  if (!schema.Equals(*shuffle->schema)) {
    return arrow::Status::Invalid("schema mismatch for shuffle '", key.shuffle_id,
                                  "': expected ", shuffle->schema->ToString(), " got ",
                                  schema.ToString());
  }
  auto& slot = shuffle->streams[key];
  // Copy-on-write: iterators hold the previous vector.
  auto next = slot ? std::make_shared<std::vector<SealedBlock>>(*slot)
                   : std::make_shared<std::vector<SealedBlock>>();
  for (auto& block : blocks) next->push_back(std::move(block));
  slot = std::move(next);
  return arrow::Status::OK();
}

arrow::Status InMemoryPartitionStore::Release(const std::string& shuffle_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (shuffles_.erase(shuffle_id) == 0) {
    return arrow::Status::KeyError("unknown shuffle '", shuffle_id, "'");
  }
  return arrow::Status::OK();
}

int64_t InMemoryPartitionStore::num_blocks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t total = 0;
  for (const auto& [id, shuffle] : shuffles_) {
    for (const auto& [key, blocks] : shuffle.streams) total += blocks->size();
  }
  return total;
}

int64_t InMemoryPartitionStore::num_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t total = 0;
  for (const auto& [id, shuffle] : shuffles_) {
    for (const auto& [key, blocks] : shuffle.streams) {
      for (const auto& block : *blocks) total += BlockBytes(block);
    }
  }
  return total;
}

}  // namespace sabot
