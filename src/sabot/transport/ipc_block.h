#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/ipc/message.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include "sabot/memory/sealed_block.h"
#include "sabot/transport/protocol.h"

namespace sabot {

// Conversions between record batches, sealed blocks (IPC bytes) and Flight payloads, as the
// transport needs them. The memory layer owns the production encoder; EncodeIpcBlock is the
// transport's own for
// what it must encode itself (batches pushed with DoPut, unencoded in-process blocks served
// over the network) and for tests. All functions are safe for concurrent use.

// IPC write options applying `compression` to bodies.
arrow::Result<arrow::ipc::IpcWriteOptions> MakeIpcWriteOptions(Compression compression);

// `batch` encoded as a SealedBlock per sealed_block.h: its dictionary batches (if any) and one
// record batch, in the IPC stream format, no schema, no end-of-stream; crc32c filled in.
arrow::Result<SealedBlock> EncodeIpcBlock(const arrow::RecordBatch& batch, Compression compression,
                                       arrow::MemoryPool* pool = arrow::default_memory_pool());


// The encapsulated messages of `ipc_bytes` as IPC payloads whose metadata and body are slices of
// `ipc_bytes`: zero copy, no decoding of the bodies. Invalid when the bytes are not a sequence
// of complete dictionary and record batch messages.
arrow::Result<std::vector<arrow::ipc::IpcPayload>> SplitIpcBlock(
    const std::shared_ptr<arrow::Buffer>& ipc_bytes);

// The schema as one encapsulated IPC message.
arrow::Result<std::shared_ptr<arrow::Buffer>> SerializeSchemaMessage(const arrow::Schema& schema);

// Decodes the blocks of one stream back into record batches. Holds the stream's dictionaries.
// Not thread-safe: one decoder per stream, used by one thread at a time.
class IpcBlockDecoder {
 public:
  static arrow::Result<std::unique_ptr<IpcBlockDecoder>> Make(
      const std::shared_ptr<arrow::Schema>& schema);
  // From an encapsulated schema message (SerializeSchemaMessage's output).
  static arrow::Result<std::unique_ptr<IpcBlockDecoder>> MakeFromMessage(
      const std::shared_ptr<arrow::Buffer>& schema_message);

  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }

  // The record batch of `ipc_bytes` (one block). Invalid when the bytes hold no record batch.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Decode(
      const std::shared_ptr<arrow::Buffer>& ipc_bytes);

 private:
  IpcBlockDecoder() = default;

  class Listener;

  std::shared_ptr<Listener> listener_;
  std::unique_ptr<arrow::ipc::StreamDecoder> decoder_;
  std::shared_ptr<arrow::Schema> schema_;
  int64_t idle_required_size_ = 0;  // what the decoder asks for between messages
};

}  // namespace sabot
