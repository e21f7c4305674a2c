#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/compute/ordering.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

namespace sabot {

// How the rows of one upstream task are distributed over the downstream partitions of an edge.
enum class EdgeType {
  kForward,    // writer task i sends every batch to partition i % num_partitions
  kHash,       // each row goes to the partition its key hashes to (docs/hashing.md)
  kBroadcast,  // every row goes to every partition
  kRebalance,  // rows are dealt round-robin, continuing across batches
  kRange,      // each row goes to the partition whose key range [b(i-1), b(i)) holds its key
};

// "FORWARD", "HASH", "BROADCAST", "REBALANCE", "RANGE".
std::string_view EdgeTypeName(EdgeType type);
// The inverse of EdgeTypeName (case-sensitive); Invalid naming `name` otherwise.
arrow::Result<EdgeType> ParseEdgeType(std::string_view name);

// What an edge's partitioning is: its type, key columns, partition count and, for RANGE, the
// sorted boundaries. It says nothing about a particular task or schema; a Partitioner is made
// from it per writer task (see partitioner.h).
//
// Invariants (checked by the Make functions, so every PartitionSpec that exists satisfies them):
//   - 1 <= num_partitions <= kMaxPartitions (common/ids.h);
//   - HASH and RANGE have at least one key column, names non-empty and distinct; the other edge
//     types have none;
//   - RANGE has `boundaries`: a batch whose columns are exactly the key columns, in key order
//     (same names), of types RANGE supports (range_partitioner.h), with num_partitions - 1 rows,
//     no nulls, sorted ascending lexicographically (equal neighbours allowed: they make an empty
//     partition). Partition i holds the keys k with b(i-1) <= k < b(i), where b(-1) = -inf and
//     b(num_partitions - 1) = +inf. Null key values sort as `null_placement` says (default: after
//     every value, so a null single-column key goes to the last partition).
//   - the other edge types have no boundaries.
//
// Immutable after Make; safe to share and use from any thread.
class PartitionSpec {
 public:
  // The general constructor: validates everything above. `boundaries` must be null unless
  // `type` is kRange. `null_placement` only matters for kRange.
  static arrow::Result<std::shared_ptr<const PartitionSpec>> Make(
      EdgeType type, std::vector<std::string> key_columns, int64_t num_partitions,
      std::shared_ptr<arrow::RecordBatch> boundaries = nullptr,
      arrow::compute::NullPlacement null_placement = arrow::compute::NullPlacement::AtEnd);

  // Shorthands for Make.
  static arrow::Result<std::shared_ptr<const PartitionSpec>> Forward(int64_t num_partitions);
  static arrow::Result<std::shared_ptr<const PartitionSpec>> Broadcast(int64_t num_partitions);
  static arrow::Result<std::shared_ptr<const PartitionSpec>> Rebalance(int64_t num_partitions);
  static arrow::Result<std::shared_ptr<const PartitionSpec>> Hash(
      std::vector<std::string> key_columns, int64_t num_partitions);
  // num_partitions = boundaries->num_rows() + 1; the key columns are the boundaries' columns.
  static arrow::Result<std::shared_ptr<const PartitionSpec>> Range(
      std::shared_ptr<arrow::RecordBatch> boundaries,
      arrow::compute::NullPlacement null_placement = arrow::compute::NullPlacement::AtEnd);

  EdgeType edge_type() const { return edge_type_; }
  const std::vector<std::string>& key_columns() const { return key_columns_; }
  int32_t num_partitions() const { return num_partitions_; }
  // RANGE only; nullptr otherwise.
  const std::shared_ptr<arrow::RecordBatch>& boundaries() const { return boundaries_; }
  arrow::compute::NullPlacement null_placement() const { return null_placement_; }

  // The spec as bytes another process can read back with Deserialize: an Arrow IPC stream whose
  // schema is the boundaries' schema (empty for non-RANGE edges) with the spec in its metadata
  // (keys "sabot.spec.*"), followed, for RANGE, by one batch holding the boundaries.
  arrow::Result<std::shared_ptr<arrow::Buffer>> Serialize() const;
  // Reads bytes written by Serialize and validates them as Make does; Invalid (never a crash)
  // on bytes that are not a serialized spec, naming what is wrong.
  // The returned spec owns its data: it does not refer to `bytes` once this returns.
  static arrow::Result<std::shared_ptr<const PartitionSpec>> Deserialize(
      const arrow::Buffer& bytes);

  bool Equals(const PartitionSpec& other) const;
  // "HASH(keys=[a, b], partitions=8)"; RANGE adds the boundary count and null placement.
  std::string ToString() const;

 private:
  PartitionSpec() = default;

  EdgeType edge_type_ = EdgeType::kForward;
  std::vector<std::string> key_columns_;
  int32_t num_partitions_ = 1;
  std::shared_ptr<arrow::RecordBatch> boundaries_;
  arrow::compute::NullPlacement null_placement_ = arrow::compute::NullPlacement::AtEnd;
};

}  // namespace sabot
