#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/memory/block_codec.h"
#include "sabot/memory/memory_metrics.h"
#include "sabot/memory/sealed_block.h"

namespace sabot {

struct PartitionBufferOptions {
  // Seal when the buffered rows or bytes reach either target. Blocks are cut at row boundaries
  // by the rows' actual bytes (RowBytes), so a block's rows and dictionaries stay within
  // target_bytes; only a single row larger than the target makes a larger block, of its own.
  int64_t target_rows = 64 * 1024;
  int64_t target_bytes = 256 * 1024;
  // The largest block the sink accepts, in size_bytes() (a pipelined channel: the most network
  // segments it can ever reserve); 0 for no limit. Blocks are cut to fit it with their framing,
  // and every sealed block is checked against it: a block over it is cut again, and a single
  // row over it fails the buffer with CapacityError naming the row's size and the limit.
  int64_t max_block_bytes = 0;
  // Seal what is buffered once its oldest row has waited this long (checked on Append and by
  // FlushIfDue), as Flink's buffer timeout. Zero or negative: no timeout.
  std::chrono::nanoseconds buffer_timeout = std::chrono::milliseconds(5);
  // False for in-process channels: blocks keep their batch unencoded (encoded only if spilled).
  bool encode = true;
  // Unencoded buffers only: a slice of at least this many bytes (RowBytes) is handed on without
  // copying its rows. Coalescing copies every row once more (a concatenation); an encoded block
  // pays that anyway, but an in-process hand-over of a large slice needs no copy: what is
  // buffered before it is sealed as it is, and the slice makes blocks of its own (zero-copy
  // slices of it, cut at the targets). Smaller slices are still coalesced, so a reader is not
  // handed a stream of tiny batches. 0: every slice passes through; a value above target_bytes:
  // none does (always coalesce).
  int64_t pass_through_bytes = 64 * 1024;
  BlockCodecOptions codec;
};

// Receives each sealed block, in order. Its error stops the buffer and reaches the writer.
using BlockSink = std::function<arrow::Status(SealedBlock block)>;

// Buffers the rows one writer task sends to one destination partition, and seals them into
// blocks: the partitioner's slices are coalesced up to the target size, then concatenated (when
// more than one) and encoded once (BlockEncoder) into a SealedBlock handed to the sink.
//
// Cutting rule: a schema of fixed-width columns only is cut by its (uniform) row width. Any
// other schema is cut by the rows' actual bytes (RowBytes: offsets of variable-width columns,
// list children, validity), found by binary search over a slice's offsets, never row by row: a
// block takes the longest run of rows whose bytes, plus the dictionaries it must carry, fit in
// the target. buffered_bytes() counts those bytes.
//
// Unencoded (in-process) buffers hand large slices on uncopied (pass_through_bytes).
//
// Seals on: a target reached (Append), Flush(), Finish() (end of input), and the buffer timeout
// (Append or FlushIfDue, which a writer task or flusher calls between batches).
//
// Lifetime: `pool` and `metrics` (not owned) outlive the buffer; sealed blocks are allocated
// from `pool`, the slices are kept by reference until sealed. Thread safety: not thread-safe;
// one writer task owns it (the sink runs in that task's thread and may block, e.g. for credit).
class PartitionBuffer {
 public:
  using Clock = std::chrono::steady_clock;

  static arrow::Result<std::unique_ptr<PartitionBuffer>> Make(
      StreamKey key, std::shared_ptr<arrow::Schema> schema, PartitionBufferOptions options,
      arrow::MemoryPool* pool, BlockSink sink, MemoryMetrics* metrics = nullptr);
  ~PartitionBuffer();

  // Buffers `slice` (schema must match), sealing as targets are reached.
  arrow::Status Append(std::shared_ptr<arrow::RecordBatch> slice, Clock::time_point now = Clock::now());
  // Seals what is buffered (nothing when empty).
  arrow::Status Flush();
  // End of input: seals the rest; no Append afterwards.
  arrow::Status Finish();
  // Flushes when the buffer timeout has passed since the oldest buffered row arrived.
  arrow::Status FlushIfDue(Clock::time_point now = Clock::now());
  // When FlushIfDue will next flush; unset when empty or without timeout.
  std::optional<Clock::time_point> flush_deadline() const;

  const StreamKey& key() const { return key_; }
  // The encoder of this stream: its schema_message() goes once before the first block.
  const BlockEncoder& encoder() const { return *encoder_; }
  int64_t buffered_rows() const { return buffered_rows_; }
  int64_t buffered_bytes() const { return buffered_bytes_; }
  int64_t blocks_sealed() const { return blocks_sealed_; }
  int64_t rows_sealed() const { return rows_sealed_; }
  bool finished() const { return finished_; }

 private:
  PartitionBuffer() = default;
  // Append for schemas whose rows all have one size (cut by the average row width), and for the
  // others (cut by each row's bytes).
  arrow::Status AppendFixedWidth(std::shared_ptr<arrow::RecordBatch> slice);
  arrow::Status AppendByRowBytes(std::shared_ptr<arrow::RecordBatch> slice);
  arrow::Status AddSlice(std::shared_ptr<arrow::RecordBatch> slice, int64_t bytes);
  arrow::Status Seal();
  // Encodes `batch` into blocks within max_block_bytes and hands them to the sink.
  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> batch);
  // The bytes a block of `batch` spends on dictionaries (RowBytes::CollectDictionaries).
  int64_t DictionaryBytes(const arrow::RecordBatch& batch) const;
  // Records `status` (with the stream's shuffle, partition and writer) as the buffer's error.
  arrow::Status Fail(const arrow::Status& status);
  void Account(int64_t bytes, int64_t rows);

  StreamKey key_;
  std::shared_ptr<arrow::Schema> schema_;
  PartitionBufferOptions options_;
  arrow::MemoryPool* pool_ = nullptr;
  BlockSink sink_;
  std::unique_ptr<BlockEncoder> encoder_;
  std::shared_ptr<ShuffleMemoryCounters> counters_;

  bool fixed_width_ = false;
  bool has_dictionaries_ = false;
  // Bound on a block's bytes beyond its rows and dictionaries (RowBytes::BlockOverheadBytes).
  int64_t block_overhead_ = 0;
  // The same bound for an unencoded block's referenced bytes (their per-buffer rounding).
  int64_t unencoded_overhead_ = 0;
  // What a block's rows and dictionaries may take: target_bytes, less the framing when
  // max_block_bytes is set and leaves less.
  int64_t block_capacity_ = 0;

  std::vector<std::shared_ptr<arrow::RecordBatch>> slices_;
  // The dictionaries the buffered slices reference, counted in buffered_bytes_ once each.
  std::vector<const arrow::ArrayData*> block_dictionaries_;
  int64_t buffered_rows_ = 0;
  int64_t buffered_bytes_ = 0;
  std::optional<Clock::time_point> oldest_;
  int64_t blocks_sealed_ = 0;
  int64_t rows_sealed_ = 0;
  bool finished_ = false;
  arrow::Status error_;
};

}  // namespace sabot
