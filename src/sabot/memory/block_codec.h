#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/io/interfaces.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/options.h>
#include <arrow/ipc/writer.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/util/compression.h>

#include "sabot/memory/sealed_block.h"

namespace sabot {

// How blocks of a stream are encoded. The compression applies to IPC body buffers, per the
// Arrow IPC format (so any Arrow reader decodes them); the same choice holds for the transport
// and the spill file, since both carry the sealed bytes unchanged.
struct BlockCodecOptions {
  // UNCOMPRESSED, LZ4_FRAME or ZSTD.
  arrow::Compression::type compression = arrow::Compression::UNCOMPRESSED;
  // The codec's default level when unset (ZSTD only; LZ4_FRAME ignores it).
  std::optional<int> compression_level;
};

// "uncompressed", "lz4", "zstd" -> the Compression type; Invalid for anything else.
arrow::Result<arrow::Compression::type> ParseBlockCompression(const std::string& name);

// Encodes the record batches of one stream into SealedBlocks, each encoded once.
//
// A block's ipc_bytes are encapsulated IPC messages: every dictionary the batch references (in
// dependency order, never as deltas: each block carries the dictionaries it needs, which
// replace any earlier ones with the same id), then the record batch. The schema message is not
// part of any block; schema_message() gives it once for the stream. Concatenating
// schema_message() and the blocks' bytes, in order, is a valid Arrow IPC stream (without
// end-of-stream marker), readable by any Arrow IPC stream reader.
//
// Lifetime: `pool` (not owned) must outlive the encoder and every block it made; the blocks'
// bytes are allocated from it. Thread safety: Encode is const and may run concurrently.
class BlockEncoder {
 public:
  // Invalid when the compression is not LZ4_FRAME, ZSTD or none; NotImplemented when the codec
  // is not built into this Arrow.
  static arrow::Result<std::unique_ptr<BlockEncoder>> Make(std::shared_ptr<arrow::Schema> schema,
                                                           BlockCodecOptions options,
                                                           arrow::MemoryPool* pool);

  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  const BlockCodecOptions& options() const { return options_; }
  // The stream's schema, as one encapsulated IPC message (allocated from the default pool).
  const std::shared_ptr<arrow::Buffer>& schema_message() const { return schema_message_; }

  // Encodes `batch` (whose schema must equal the stream's) into a block, with its crc32c.
  arrow::Result<SealedBlock> Encode(const arrow::RecordBatch& batch) const;
  // `block` if already encoded; otherwise its batch encoded (the block's batch is dropped).
  arrow::Result<SealedBlock> EnsureEncoded(const SealedBlock& block) const;

  // What EncodeTo wrote: the block's length and crc32c, as Encode would have given them.
  struct Extent {
    int64_t length = 0;
    uint32_t crc32c = 0;
  };
  // Encodes `batch` like Encode, but writes the bytes straight to `out` instead of into one
  // buffer: uncompressed, the column buffers are written where they lie, so nothing the size of
  // the block is allocated (what a spill needs when the budget is full). On error, part of the
  // block may have been written. The little it allocates (metadata; compressed bodies when
  // compressed, one block's worth at most) comes from the default pool, not the encoder's: a
  // spill must not wait for the budget it frees.
  arrow::Result<Extent> EncodeTo(const arrow::RecordBatch& batch,
                                 arrow::io::OutputStream* out) const;

 private:
  BlockEncoder() = default;
  // The IPC payloads of `batch`: its dictionaries, then the record batch.
  arrow::Result<std::vector<arrow::ipc::IpcPayload>> Payloads(
      const arrow::RecordBatch& batch, const arrow::ipc::IpcWriteOptions& options) const;

  std::shared_ptr<arrow::Schema> schema_;
  BlockCodecOptions options_;
  arrow::MemoryPool* pool_ = nullptr;
  arrow::ipc::IpcWriteOptions write_options_;
  std::unique_ptr<arrow::ipc::DictionaryFieldMapper> mapper_;
  std::shared_ptr<arrow::Buffer> schema_message_;
};

// Decodes the blocks of one stream, in order, back into record batches.
//
// Zero-copy where the format allows: the columns of an uncompressed block point into its
// ipc_bytes (which they keep alive); compressed bodies are decompressed into `pool`. An
// unencoded block (in-process channel) yields its batch as is. Each encoded block's crc32c is
// checked first (unless the caller already did); a mismatch, trailing bytes, or a block without exactly one record batch is an
// error and yields no data.
//
// Lifetime: `pool` (not owned) must outlive the decoder and the batches it returns.
// Thread safety: not thread-safe (it keeps the stream's dictionary state); one reader thread.
// After an error the decoder must not be used further.
class BlockDecoder {
 public:
  static arrow::Result<std::unique_ptr<BlockDecoder>> Make(
      std::shared_ptr<arrow::Schema> schema,
      arrow::MemoryPool* pool = arrow::default_memory_pool());
  ~BlockDecoder();

  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }

  // `verify_checksum` false skips the crc32c pass, for bytes whose checksum the caller has just
  // verified (SpillFileReader and BlockStreamReader check spilled blocks when they read them).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Decode(const SealedBlock& block,
                                                            bool verify_checksum = true);

 private:
  class MessageSource;
  BlockDecoder() = default;

  std::shared_ptr<arrow::Schema> schema_;
  MessageSource* source_ = nullptr;  // owned by reader_
  std::shared_ptr<arrow::RecordBatchReader> reader_;
};

}  // namespace sabot
