#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include "sabot/common/data_generator.h"
#include "sabot/partition/partition_spec.h"

namespace sabot {

// A shuffle job over generated data (common/data_generator.h) whose outcome can be checked row by
// row: writer task w writes batches w * batches_per_writer ... (w + 1) * batches_per_writer - 1
// of the generated table. Used by the `sabot shuffle` command and the shuffle tests.
//
// Sizes arrive from the network (the agents' control actions), so Validate() bounds them all and
// the row counts below never overflow, whatever the fields hold.
struct GeneratedJob {
  // Bounds Validate() enforces: rows per batch, and rows of the whole table.
  static constexpr int64_t kMaxBatchRows = int64_t{1} << 24;
  static constexpr int64_t kMaxTotalRows = int64_t{1} << 40;
  static constexpr int32_t kMaxPayloadColumns = 1000;  // as GenerateBatch allows

  DataGeneratorOptions data;
  int32_t num_writers = 1;
  int64_t batches_per_writer = 1;

  // Saturate at INT64_MAX instead of overflowing (only a job that fails Validate() gets there).
  int64_t rows_per_writer() const;
  int64_t total_rows() const;
  // Batch `index` (0-based) of writer `writer`.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> WriterBatch(
      int32_t writer, int64_t index, arrow::MemoryPool* pool = arrow::default_memory_pool()) const;
  // The spec of an edge of `type` over the generated int64 column `key`; RANGE boundaries split
  // [0, key_cardinality) evenly.
  arrow::Result<std::shared_ptr<const PartitionSpec>> MakeSpec(EdgeType type,
                                                               int32_t num_partitions) const;
  // Invalid naming the first field out of range: num_writers outside [1, kMaxPartitions],
  // batches_per_writer < 0, batch_rows outside [0, kMaxBatchRows], more than kMaxTotalRows rows,
  // key_cardinality < 1, hot_key_fraction outside [0, 1], payload_columns outside
  // [1, kMaxPayloadColumns].
  arrow::Status Validate() const;
};

// Checks what the readers of a GeneratedJob's shuffle received: every row exactly once, at the
// partition it belongs to (every partition for BROADCAST), in writer order within each
// (writer, partition) stream; and no row altered. The expected partition of a row is computed
// here, independently of the partition layer: HASH from the formulas of docs/hashing.md for an
// int64 key, RANGE by counting boundaries, REBALANCE and FORWARD from the row's position.
//
// Exactly once with O(partitions x writers) state, whatever the number of rows: each row
// received must belong where it arrived and come after the previous row of its
// (partition, writer) stream (so no row arrives twice), and Finish() compares the rows received
// per (partition, writer) with the counts the independent computation gives (so none is
// missing): a strictly increasing sequence of members of a set, as long as the set, is the set.
//
// Thread safety: Check() may run concurrently for different partitions; calls for one partition
// come from one thread at a time. Finish(), counts() and MergeCounts() need exclusive use.
class GeneratedShuffleCheck {
 public:
  // The most memory the check's state may take (bytes): Make() computes what it needs before
  // allocating anything and refuses more, so no job — however large its declared sizes — makes
  // the check allocate beyond this.
  static constexpr int64_t kMaxStateBytes = int64_t{256} << 20;

  // Invalid for a job that fails Validate(), for a spec the check cannot compute independently
  // (HASH or RANGE on a key other than the single int64 column `key`), and for a job whose check
  // would need more than kMaxStateBytes (the message says how much).
  static arrow::Result<std::unique_ptr<GeneratedShuffleCheck>> Make(
      const GeneratedJob& job, std::shared_ptr<const PartitionSpec> spec);

  // Checks the rows of `batch`, received by the reader of `partition_id`. The first problem is
  // an error naming the partition, the row and what is wrong (wrong partition, duplicate,
  // out of order, altered values).
  arrow::Status Check(int32_t partition_id, const arrow::RecordBatch& batch);
  // OK when every row that should have arrived did; else Invalid naming how many rows never
  // arrived and, for the first (partition, writer) stream short of rows, how many it received
  // of how many. Computes the expected counts (a pass over every row of the job).
  arrow::Status Finish() const;
  // Finish() for the streams into `partitions` only (a process that read some of the partitions:
  // an agent of a distributed job); partitions out of range are ignored.
  arrow::Status FinishPartitions(const std::vector<int32_t>& partitions) const;

  // The progress of the reader of `partition_id`, per writer: the last row received (-1: none)
  // and the rows received — what a checkpoint of that reader records (the verify sink's
  // snapshot). RestorePartition sets it back for a reader restarted from the checkpoint, so the
  // rows replayed after it are checked as the first arrivals they are. Same thread rules as
  // Check (calls for one partition from one thread at a time). Invalid for a partition out of
  // range or lists of another length than the writers.
  struct PartitionProgress {
    std::vector<int64_t> last_row;
    std::vector<int64_t> received;
  };
  arrow::Result<PartitionProgress> Progress(int32_t partition_id) const;
  arrow::Status RestorePartition(int32_t partition_id, const PartitionProgress& progress);

  int64_t rows_checked() const { return rows_checked_.load(); }
  // Rows received so far per (partition, writer), partition-major (p * num_writers + w), for a
  // coordinator to merge (distributed mode: each agent checks the partitions it read).
  std::vector<int64_t> counts() const;
  // Adds another check's counts; a (partition, writer) stream counted by both arrived twice
  // (Invalid), and so does a malformed list.
  arrow::Status MergeCounts(const std::vector<int64_t>& counts);

 private:
  GeneratedShuffleCheck() = default;
  // The partition row `row` (global row number, with key `key`) must reach.
  int32_t ExpectedPartition(int64_t row, int64_t key) const;
  // Rows of each (partition, writer) stream that should arrive, partition-major.
  std::vector<int64_t> ExpectedCounts() const;

  GeneratedJob job_;
  std::shared_ptr<const PartitionSpec> spec_;
  std::vector<int64_t> boundaries_;  // RANGE
  // Per (partition, writer): the last row seen (for order and duplicates) and the rows seen.
  std::vector<std::vector<int64_t>> last_row_;
  std::vector<std::vector<int64_t>> received_;
  std::atomic<int64_t> rows_checked_{0};
};

// The partition of an int64 key on a HASH edge with one key column, per docs/hashing.md. Written
// from the document, independently of sabot/partition/key_hash.h.
int32_t ReferenceHashPartitionOfInt64(int64_t key, int32_t num_partitions);

}  // namespace sabot
