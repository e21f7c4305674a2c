#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <arrow/buffer.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/io/interfaces.h>
#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/memory/block_codec.h"
#include "sabot/memory/sealed_block.h"

namespace sabot {

// Where one spilled block lies in its spill file, and what it must read back as. The index of
// a spill file is the list of these, kept in memory by the BlockStore (spill files never
// outlive the process that wrote them). See docs/spill-format.md.
struct SpillBlockLocation {
  int64_t offset = 0;  // of the block's first byte
  int64_t length = 0;  // of its ipc_bytes (of its event bytes for an event)
  int64_t num_rows = 0;
  uint32_t crc32c = 0;  // of its ipc_bytes (of its event bytes)
  bool event = false;   // the bytes are an event's (SealedBlock::event), not IPC messages
};

// Appends the sealed blocks of one stream to its spill file: an Arrow IPC stream made of the
// stream's schema message followed by the blocks' ipc_bytes, written as they are (already
// encoded and compressed). A new file starts with the schema message; an existing one is
// appended to, never overwritten. An event block is written as its raw bytes, in its place
// between the row blocks (its location says it is an event), so a file holding events is no
// longer a plain IPC stream; docs/spill-format.md.
//
// A failed write (disk full, I/O error, short write) poisons the writer: it returns the error
// and writes nothing more; blocks appended before stay readable, and the bytes of the failed
// block are never indexed, so they are never read. Close, then reopen to try again.
//
// Lifetime: `filesystem` is shared. Thread safety: requires external synchronization.
class SpillFileWriter {
 public:
  // Opens `path` for appending, creating it (with `schema_message` first) when missing.
  static arrow::Result<std::unique_ptr<SpillFileWriter>> Open(
      std::shared_ptr<arrow::fs::FileSystem> filesystem, std::string path,
      std::shared_ptr<arrow::Buffer> schema_message);
  ~SpillFileWriter();

  // Appends an encoded block or an event; its location on success.
  arrow::Result<SpillBlockLocation> Append(const SealedBlock& block);
  // Appends `block`: its bytes if encoded; otherwise its batch, encoded by `encoder` straight
  // into the file (BlockEncoder::EncodeTo), so that spilling an unencoded, uncompressed block
  // allocates no memory the size of the block. The bytes written are what Encode would give.
  arrow::Result<SpillBlockLocation> Append(const SealedBlock& block, const BlockEncoder& encoder);
  // Makes appended blocks visible to readers.
  arrow::Status Flush();
  arrow::Status Close();

  const std::string& path() const { return path_; }
  // Bytes of the file known to hold complete data (schema and appended blocks).
  int64_t committed_size() const { return position_; }

 private:
  SpillFileWriter() = default;
  // Records and returns the writer's error: what it was `doing`, the file, the cause (with its
  // errno text) and, when `bytes` >= 0, how many bytes were being written at which offset.
  arrow::Status Fail(const arrow::Status& st, const char* doing, int64_t bytes);

  std::shared_ptr<arrow::fs::FileSystem> filesystem_;
  std::string path_;
  std::shared_ptr<arrow::io::OutputStream> out_;
  int64_t position_ = 0;
  arrow::Status error_;
};

// Reads blocks back from a spill file by their locations. A block that is truncated (the file
// ends before it does) or corrupted (its crc32c differs) is an IOError naming the file and
// offset; no partial or damaged block is ever returned.
//
// Thread safety: requires external synchronization.
class SpillFileReader {
 public:
  static arrow::Result<std::unique_ptr<SpillFileReader>> Open(
      std::shared_ptr<arrow::fs::FileSystem> filesystem, std::string path);
  ~SpillFileReader();

  // The block at `location` (an event block when the location says so); its bytes are
  // allocated from `pool`.
  arrow::Result<SealedBlock> Read(const SpillBlockLocation& location, arrow::MemoryPool* pool);

  const std::string& path() const { return path_; }

 private:
  SpillFileReader() = default;

  std::string path_;
  std::shared_ptr<arrow::io::RandomAccessFile> file_;
};

}  // namespace sabot
