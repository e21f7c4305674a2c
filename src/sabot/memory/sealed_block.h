#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <arrow/buffer.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

namespace sabot {

class SegmentReservation;

// Identifies one ordered stream of blocks: what writer task `writer_task` (attempt
// `writer_attempt`) produced for partition `partition_id` of shuffle `shuffle_id`. Order is kept
// per stream; a reader of a partition reads one stream per writer.
struct StreamKey {
  std::string shuffle_id;
  int32_t partition_id = 0;
  int32_t writer_task = 0;
  int32_t writer_attempt = 0;

  friend bool operator==(const StreamKey&, const StreamKey&) = default;
  friend auto operator<=>(const StreamKey&, const StreamKey&) = default;
};

// One sealed block of a stream: rows a PartitionBuffer coalesced, encoded once.
//
// `ipc_bytes` holds, in the Arrow IPC stream format (encapsulated messages, each 8-byte
// aligned), zero or more dictionary batches followed by exactly one record batch; never a
// schema message and never end-of-stream. The schema is sent once per stream, before its first
// block. Body buffers may be compressed (LZ4_FRAME or ZSTD) per the IPC format. These bytes are
// what the Flight transport sends, what the spill file stores, and what a server serves: nothing
// decodes and re-encodes them. `crc32c` is the CRC-32C (Castagnoli) of `ipc_bytes`.
//
// An in-process channel may skip encoding: then `batch` is set and `ipc_bytes` is null until the
// block must leave memory (spill), when it is encoded once.
//
// Immutable after construction; safe to share across threads. The memory it holds is charged to
// the pool it was allocated from until the last reference goes away.
//
// `segments`, when set, is the NetworkBufferPool reservation that paid for this block on a
// pipelined channel: it travels with the block and returns to the pool when the last copy of
// the block is gone (the reader consumed it, or the transport sent it).
//
// Events. A block may instead be an EVENT: `event` holds opaque bytes (at most kMaxEventBytes;
// possibly zero bytes, but never a null buffer) that travel in the stream's order between its
// row blocks, through every channel and store, and reach the reader as they were written. The
// shuffle never looks inside them: the dataflow layer encodes watermarks, end of input and
// checkpoint barriers as event bytes. An event block has `ipc_bytes` and `batch` null,
// `num_rows` 0, and `crc32c` the CRC-32C of the event's bytes; it takes a credit on a
// pipelined channel like any block. Make one with MakeEventBlock.
struct SealedBlock {
  std::shared_ptr<arrow::Buffer> ipc_bytes;
  std::shared_ptr<arrow::RecordBatch> batch;
  int64_t num_rows = 0;
  uint32_t crc32c = 0;
  std::shared_ptr<SegmentReservation> segments;
  std::shared_ptr<arrow::Buffer> event;

  bool is_event() const { return event != nullptr; }
  // True for a row block whose IPC bytes are there (never for an event).
  bool encoded() const { return ipc_bytes != nullptr; }
  // Bytes this block holds in memory (encoded size, the batch's buffer size when unencoded, or
  // the event's size).
  int64_t size_bytes() const;
};

// The largest event payload (bytes) the shuffle carries. Events are small control records
// (watermarks, barriers); anything larger is refused with Invalid where it enters the shuffle.
inline constexpr int64_t kMaxEventBytes = int64_t{64} << 10;

// A zero-byte event payload (a shared, immutable buffer).
std::shared_ptr<arrow::Buffer> EmptyEventPayload();

// An event block carrying `payload`. Invalid for a null payload or one over kMaxEventBytes.
arrow::Result<SealedBlock> MakeEventBlock(std::shared_ptr<arrow::Buffer> payload);

// One item of a stream as its reader receives it: a batch of rows, or an event's bytes, never
// both. Both null means the end of the stream where an API says so.
struct StreamItem {
  std::shared_ptr<arrow::RecordBatch> batch;
  std::shared_ptr<arrow::Buffer> event;

  bool is_event() const { return event != nullptr; }
  bool is_batch() const { return batch != nullptr; }
  bool is_end() const { return batch == nullptr && event == nullptr; }
};

}  // namespace sabot
