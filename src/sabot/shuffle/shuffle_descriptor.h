#pragma once

#include <cstdint>
#include <memory>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "sabot/common/ids.h"
#include "sabot/partition/partition_spec.h"
#include "sabot/shuffle/shuffle_options.h"

namespace sabot {

// Everything the agents of a job must agree on about one shuffle: its id, how rows are
// partitioned, the schema of its batches, how many writer tasks feed it, and its options.
// Registered with every agent's ShuffleManager that runs one of its writers or readers; sent
// between processes as Serialize()'s bytes.
//
// Immutable once validated; safe to share across threads.
struct ShuffleDescriptor {
  ShuffleId shuffle_id;
  std::shared_ptr<const PartitionSpec> spec;
  std::shared_ptr<arrow::Schema> schema;
  int32_t num_writers = 1;
  ShuffleOptions options;

  int32_t num_partitions() const { return spec->num_partitions(); }

  // Invalid naming what is wrong: a bad id (ValidateId), no spec or schema, a writer count out
  // of range, FORWARD with num_writers != num_partitions, a key column missing from the schema,
  // options out of range.
  arrow::Status Validate() const;

  // IndexError ("partition 9 is out of range: the shuffle has 4 partitions") unless
  // 0 <= partition_id < num_partitions(); the caller adds its context (WithShuffleContext).
  arrow::Status CheckPartition(PartitionId partition_id) const;
  // The same for a writer task index against num_writers.
  arrow::Status CheckWriterTask(TaskIndex writer_task) const;

  // A self-contained binary form (docs/shuffle-service.md): version, id, spec, schema, options.
  arrow::Result<std::shared_ptr<arrow::Buffer>> Serialize() const;
  // Reads Serialize()'s bytes and validates them; Invalid (never a crash) for anything else.
  static arrow::Result<ShuffleDescriptor> Deserialize(const arrow::Buffer& bytes);
};

}  // namespace sabot
