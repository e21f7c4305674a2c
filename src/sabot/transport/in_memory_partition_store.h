#pragma once

#include <map>
#include <mutex>

#include "sabot/common/thread_annotations.h"
#include "sabot/transport/partition_store.h"

namespace sabot {

// A PartitionStore holding every block in memory: for tests, test agents and benchmarks (the
// production store is the memory layer's, adapted by the shuffle layer).
//
// Lifecycle: Make; RegisterShuffle before blocks of a shuffle are appended or served; Release
// drops it. Thread safety: safe for concurrent use.
class InMemoryPartitionStore : public PartitionStore {
 public:
  static arrow::Result<std::shared_ptr<InMemoryPartitionStore>> Make();

  // Invalid for a bad id or count, or an id registered before.
  arrow::Status RegisterShuffle(const std::string& shuffle_id,
                                std::shared_ptr<arrow::Schema> schema, int32_t num_partitions,
                                Compression compression = Compression::kNone);

  std::vector<std::string> ListShuffles() override;
  arrow::Result<ShuffleDescription> Describe(const std::string& shuffle_id) override;
  arrow::Result<std::vector<StreamKey>> ListStreams(const std::string& shuffle_id,
                                                    int32_t partition_id) override;
  arrow::Result<std::unique_ptr<BlockIterator>> OpenStream(const StreamKey& key) override;
  arrow::Status Append(const StreamKey& key, const arrow::Schema& schema,
                       std::vector<SealedBlock> blocks) override;
  arrow::Status Release(const std::string& shuffle_id) override;

  // Figures over all shuffles, for leak checks.
  int64_t num_blocks() const;
  int64_t num_bytes() const;

 private:
  struct Shuffle {
    std::shared_ptr<arrow::Schema> schema;
    int32_t num_partitions = 0;
    Compression compression = Compression::kNone;
    std::map<StreamKey, std::shared_ptr<std::vector<SealedBlock>>> streams;
  };

  InMemoryPartitionStore() = default;
  arrow::Result<Shuffle*> FindLocked(const std::string& shuffle_id) SABOT_REQUIRES(mutex_);

  mutable std::mutex mutex_;
  std::map<std::string, Shuffle> shuffles_ SABOT_GUARDED_BY(mutex_);
};

}  // namespace sabot
