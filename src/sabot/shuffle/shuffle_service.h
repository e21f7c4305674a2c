#pragma once

#include <memory>
#include <string>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include "sabot/partition/partition_spec.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

// The seeds' ShuffleService, in C++: the facade an agent's callers use to shuffle, on top of
// the agent's ShuffleManager.
//
// Model: a shuffle runs across `agents` (their server locations; empty in local mode, meaning
// this process alone). Agent i is writer task i of the shuffle: SendPartition/Send write this
// agent's rows; FinishSending ends them. ReceivePartition reads one partition's rows from every
// agent's writer. With several agents, every agent creates the shuffle with the same arguments
// (the job manager sees to that).
//
// Thread safety: safe for concurrent use, with one thread sending per shuffle at a time.
// Lifetime: `manager` (not owned) outlives the service.
class ShuffleService {
 public:
  // `local_location` is this agent's entry in the `agents` lists (empty in local mode).
  ShuffleService(ShuffleManager* manager, std::string local_location)
      : manager_(manager), local_location_(std::move(local_location)) {}

  // Creates shuffle `shuffle_id` of `type` (HASH, BROADCAST, REBALANCE, RANGE, FORWARD) over
  // `num_partitions` partitions keyed by `keys`, for batches of `schema`. RANGE takes its
  // boundaries (num_partitions - 1 sorted rows of the key columns). Invalid when this agent is
  // not in a non-empty `agents`.
  arrow::Status CreateShuffle(const ShuffleId& shuffle_id, EdgeType type, int32_t num_partitions,
                              std::vector<std::string> keys, std::shared_ptr<arrow::Schema> schema,
                              std::vector<std::string> agents = {}, ShuffleOptions options = {},
                              std::shared_ptr<arrow::RecordBatch> range_boundaries = nullptr);

  // Sends `batch`, all of whose rows belong to `partition_id`, from this agent. When
  // `target_agent` is given it must be the agent that reads the partition (agents[p % K]).
  arrow::Status SendPartition(const ShuffleId& shuffle_id, PartitionId partition_id,
                              const std::shared_ptr<arrow::RecordBatch>& batch,
                              const std::string& target_agent = "");
  // Partitions `batch` by the shuffle's spec and sends every part.
  arrow::Status Send(const ShuffleId& shuffle_id, const std::shared_ptr<arrow::RecordBatch>& batch);
  // This agent has sent everything.
  arrow::Status FinishSending(const ShuffleId& shuffle_id);

  // Every batch of `partition_id`, from every agent's writer, once they have all finished.
  // In a pipelined shuffle writers wait for readers (credit), so every partition must be read
  // while the writers run, each by its own task: a reader that waits for another partition
  // first would stall the writers (until the shuffle's timeout ends it with an error).
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReceivePartition(
      const ShuffleId& shuffle_id, PartitionId partition_id);
  arrow::Result<std::unique_ptr<ShuffleReader>> OpenPartition(const ShuffleId& shuffle_id,
                                                              PartitionId partition_id);
  // The agent that reads `partition_id` (agents[p % K]); empty in local mode.
  arrow::Result<std::string> ReaderAgent(const ShuffleId& shuffle_id, PartitionId partition_id);

  // Releases the shuffle here: memory freed, spill files deleted.
  arrow::Status CloseShuffle(const ShuffleId& shuffle_id);
  arrow::Result<ShuffleStats> GetShuffleStats(const ShuffleId& shuffle_id);
  std::vector<ShuffleStats> GetAllStats();
  // Releases every shuffle created through this service; later calls fail.
  arrow::Status Shutdown();

 private:
  struct Membership {
    std::vector<std::string> agents;
    TaskIndex self = 0;
  };
  arrow::Result<Membership> Find(const ShuffleId& shuffle_id) const;
  arrow::Status CheckOpen() const;

  ShuffleManager* manager_;
  std::string local_location_;
  mutable std::mutex mutex_;
  std::map<ShuffleId, Membership> shuffles_ SABOT_GUARDED_BY(mutex_);
  bool shut_down_ SABOT_GUARDED_BY(mutex_) = false;
};

}  // namespace sabot
