#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include "sabot/common/ids.h"
#include "sabot/partition/write_combining_scatter.h"

namespace sabot {

// Splits record batches into per-partition batches, given one partition id per row.
//
// How: a counting sort. A histogram of the ids gives each partition's row count, its prefix sum
// each partition's start, and a stable pass gives each row its place in the output,
// dest[i] = cursor[id[i]]++ (input order kept within a partition). Each column is written once,
// by a kernel chosen per column type, into one new buffer per column buffer; partition p's
// column is a zero-copy slice [start(p), start(p) + count(p)) of it. Fixed-width values (by
// byte width; dictionary indices too, the dictionary is shared) are scattered, out[dest[i]] =
// in[i]: sequential reads, one sequential write stream per partition. When the output outgrows
// the cache and there are more than 16 partitions, they are write-combined
// (write_combining_scatter.h: whole cache lines written around the cache, up to four columns of
// a width per pass); otherwise a chunk of rows at a time by each row's destination (with up to
// 16 partitions several 8-byte columns in one loop). The other
// kernels gather by the permutation (the inverse of dest, built in the same pass, only when a
// column needs it): validity bitmaps and boolean values (bit gather), variable-width binary and
// string (two passes: offsets, then bytes), and arrow::compute's Take for every other type
// (nested types, views, ...).
//
// Shortcuts: an empty batch gives no batches; when every row has the same id, that partition
// gets the input batch itself (no copy).
//
// Lifecycle: Make once per task, Scatter per batch. Memory for outputs comes from `pool`; the
// outputs own it (they outlive the RowScatter). The histogram, destination and permutation
// scratch is kept and reused across batches, so Scatter allocates nothing per row.
//
// Thread safety: not safe for concurrent use; make one per task. `pool` must outlive it.
class RowScatter {
 public:
  static arrow::Result<std::unique_ptr<RowScatter>> Make(int32_t num_partitions,
                                                         arrow::MemoryPool* pool);

  // Returns num_partitions entries, nullptr for partitions that get no rows. `ids` holds
  // batch->num_rows() ids, each in [0, num_partitions): otherwise Invalid naming the row and id.
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Scatter(
      const std::shared_ptr<arrow::RecordBatch>& batch, const PartitionId* ids);

  // The same, for a caller that built the histogram while computing the ids (saving a pass):
  // counts[p] must be the number of rows whose id is p, for every p in [0, num_partitions).
  // The ids are then trusted to be in range (the caller made them so); the counts are checked
  // to add up to the row count (Invalid otherwise).
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ScatterCounted(
      const std::shared_ptr<arrow::RecordBatch>& batch, const PartitionId* ids,
      const int64_t* counts);

  int32_t num_partitions() const { return num_partitions_; }

 private:
  RowScatter(int32_t num_partitions, arrow::MemoryPool* pool)
      : num_partitions_(num_partitions), pool_(pool) {}

  // Scatter once counts_ holds the histogram of `ids`.
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ScatterWithHistogram(
      const std::shared_ptr<arrow::RecordBatch>& batch, const PartitionId* ids);
  // The output column for `column`; for fixed-width types `values` holds the values already
  // scattered (the validity bitmap is still to gather), otherwise it is nullptr.
  arrow::Result<std::shared_ptr<arrow::ArrayData>> GatherColumn(
      const arrow::ArrayData& column, std::shared_ptr<arrow::Buffer> values);

  int32_t num_partitions_;
  arrow::MemoryPool* pool_;
  std::vector<int64_t> counts_;
  std::vector<int64_t> starts_;
  std::vector<uint32_t> cursors_;
  std::vector<uint32_t> destinations_;
  std::vector<uint32_t> permutation_;
  WriteCombiningScatter write_combining_;
};

}  // namespace sabot
