#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sabot/memory/block_store.h"
#include "sabot/shuffle/shuffle_descriptor.h"
#include "sabot/transport/partition_store.h"

namespace sabot {

class ShuffleManager;

// The PartitionStore an agent's Flight server serves: the streams of the agent's BlockStore
// (blocking shuffles' output, from memory and spill), described with the shuffles' descriptors
// registered with its ShuffleManager. Releasing through it releases the shuffle in the manager.
//
// A push (DoPut, Append) delivers one whole stream: the stream is declared, its blocks appended
// and it is finished, so readers see it complete; pushing to a stream that exists is
// AlreadyExists. ListStreams gives one stream per writer task: its newest attempt (a writer task
// run again here by lineage recovery; docs/fault-tolerance.md). A push that fails midway (the store could not take a block) leaves the stream
// failed: its readers get that error, never the partial stream as complete. Thread safety: safe for concurrent use. Lifetime: `manager` outlives it.
class ServedPartitionStore : public PartitionStore {
 public:
  explicit ServedPartitionStore(ShuffleManager* manager) : manager_(manager) {}

  std::vector<std::string> ListShuffles() override;
  arrow::Result<ShuffleDescription> Describe(const std::string& shuffle_id) override;
  arrow::Result<std::vector<StreamKey>> ListStreams(const std::string& shuffle_id,
                                                    int32_t partition_id) override;
  arrow::Result<std::unique_ptr<BlockIterator>> OpenStream(const StreamKey& key) override;
  arrow::Status Append(const StreamKey& key, const arrow::Schema& schema,
                       std::vector<SealedBlock> blocks) override;
  arrow::Status Release(const std::string& shuffle_id) override;

 private:
  ShuffleManager* manager_;
};

}  // namespace sabot
