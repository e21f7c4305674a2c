#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <arrow/status.h>

namespace sabot {

// Names a shuffle across all agents of a job. Ids go into file paths (spill files) and Flight
// paths, so they are restricted: see ValidateId.
using ShuffleId = std::string;
// A destination partition of a shuffle: 0 <= id < num_partitions.
using PartitionId = int32_t;
// An upstream (writer) or downstream (reader) task index within its operator: 0 <= id < parallelism.
using TaskIndex = int32_t;

// The largest number of partitions (and of tasks of one operator) a shuffle may have. A larger
// count is almost certainly a mistake (a row count passed as a partition count, say) and would
// cost per-partition buffers that no budget can hold.
inline constexpr int32_t kMaxPartitions = 1 << 16;

// OK when `id` is 1 to 128 characters of [A-Za-z0-9_.-] and does not start with '.', so it is
// safe as one path component (no traversal, no hidden files, no separators). Otherwise Invalid,
// naming `what` ("shuffle id", "agent id") and the offending value.
arrow::Status ValidateId(std::string_view id, std::string_view what);

// OK when 1 <= count <= kMaxPartitions; otherwise Invalid naming `what` and the value.
arrow::Status ValidateCount(int64_t count, std::string_view what);

}  // namespace sabot
