#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "sabot/memory/sealed_block.h"
#include "sabot/transport/protocol.h"

namespace sabot {

// What the Flight server needs from the agent's block store: describe shuffles, list and read
// the sealed blocks of a partition's streams (from memory or spill: the store decides), accept
// blocks pushed by other agents, release a shuffle. The shuffle layer adapts the memory layer's
// block store to it; InMemoryPartitionStore implements it for tests and test agents.
//
// Errors implementations return, which the server passes on as Flight errors:
//   KeyError   - unknown shuffle or stream;
//   IndexError - partition id out of range;
//   Invalid    - a request that can never succeed (schema mismatch on Append).
// Implementations are safe for concurrent use.

// Figures of one partition, over all its streams.
struct PartitionStats {
  int32_t partition_id = 0;
  int64_t num_streams = 0;
  int64_t num_blocks = 0;
  int64_t num_rows = 0;
  int64_t num_bytes = 0;  // encoded bytes, or buffer bytes of unencoded blocks
};

struct ShuffleDescription {
  std::string shuffle_id;
  std::shared_ptr<arrow::Schema> schema;
  int32_t num_partitions = 0;
  Compression compression = Compression::kNone;
  std::vector<PartitionStats> partitions;  // one per partition id, in order
};

// IndexError naming the shuffle unless 0 <= partition_id < num_partitions: the one range check
// of the stores and the server.
inline arrow::Status CheckPartitionInRange(const std::string& shuffle_id, int32_t partition_id,
                                           int32_t num_partitions) {
  if (partition_id >= 0 && partition_id < num_partitions) return arrow::Status::OK();
  return arrow::Status::IndexError("partition ", partition_id, " is out of range for shuffle '",
                                   shuffle_id, "' of ", num_partitions, " partitions");
}

// Iterates over the blocks of one stream in order. Not thread-safe. Lifetime: may outlive the
// store's Release of its shuffle (it holds references to the blocks it still has to yield).
class BlockIterator {
 public:
  virtual ~BlockIterator() = default;
  // The next block, or nullopt at the end.
  virtual arrow::Result<std::optional<SealedBlock>> Next() = 0;
};

class PartitionStore {
 public:
  virtual ~PartitionStore() = default;

  virtual std::vector<std::string> ListShuffles() = 0;
  virtual arrow::Result<ShuffleDescription> Describe(const std::string& shuffle_id) = 0;
  // The streams (one per writer task attempt) of a partition, ordered by writer task.
  virtual arrow::Result<std::vector<StreamKey>> ListStreams(const std::string& shuffle_id,
                                                            int32_t partition_id) = 0;
  virtual arrow::Result<std::unique_ptr<BlockIterator>> OpenStream(const StreamKey& key) = 0;
  // Appends `blocks` to `key`'s stream, all or none. Invalid when `schema` differs from the
  // shuffle's.
  virtual arrow::Status Append(const StreamKey& key, const arrow::Schema& schema,
                               std::vector<SealedBlock> blocks) = 0;
  // Drops the shuffle and its blocks. KeyError when unknown.
  virtual arrow::Status Release(const std::string& shuffle_id) = 0;
};

// Bytes `block` holds: its encoded size, the buffer size of its batch, or its event's size.
int64_t BlockBytes(const SealedBlock& block);

}  // namespace sabot
