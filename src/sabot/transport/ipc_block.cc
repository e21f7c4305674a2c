#include "sabot/transport/ipc_block.h"

#include <arrow/io/memory.h>
#include <arrow/util/compression.h>

#include "sabot/memory/crc32c.h"

namespace sabot {

arrow::Result<arrow::ipc::IpcWriteOptions> MakeIpcWriteOptions(Compression compression) {
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  switch (compression) {
    case Compression::kNone:
      break;
    case Compression::kLz4Frame: {
      ARROW_ASSIGN_OR_RAISE(options.codec,
                            arrow::util::Codec::Create(arrow::Compression::LZ4_FRAME));
      break;
    }
    case Compression::kZstd: {
      ARROW_ASSIGN_OR_RAISE(options.codec, arrow::util::Codec::Create(arrow::Compression::ZSTD));
      break;
    }
  }
  return options;
}

arrow::Result<SealedBlock> EncodeIpcBlock(const arrow::RecordBatch& batch, Compression compression,
                                       arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(auto options, MakeIpcWriteOptions(compression));
  options.memory_pool = pool;
  // A stream writer emits schema, dictionaries and the batch; the schema message is cut off and
  // the writer is never closed, so no end-of-stream marker is written.
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create(4096, pool));
  ARROW_ASSIGN_OR_RAISE(auto writer,
                        arrow::ipc::MakeStreamWriter(sink, batch.schema(), options));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(batch));
  ARROW_ASSIGN_OR_RAISE(auto stream_bytes, sink->Finish());
  arrow::io::BufferReader reader(stream_bytes);
  ARROW_ASSIGN_OR_RAISE(auto schema_message, arrow::ipc::ReadMessage(&reader));
  if (schema_message == nullptr) return arrow::Status::Invalid("IPC writer wrote no schema");
  ARROW_ASSIGN_OR_RAISE(int64_t schema_end, reader.Tell());
  SealedBlock block;
  block.ipc_bytes = arrow::SliceBuffer(stream_bytes, schema_end);
  block.num_rows = batch.num_rows();
  block.crc32c = Crc32c(block.ipc_bytes->data(), block.ipc_bytes->size());
  return block;
}

arrow::Result<std::vector<arrow::ipc::IpcPayload>> SplitIpcBlock(
    const std::shared_ptr<arrow::Buffer>& ipc_bytes) {
  std::vector<arrow::ipc::IpcPayload> payloads;
  if (ipc_bytes == nullptr) return arrow::Status::Invalid("block has no IPC bytes");
  arrow::io::BufferReader reader(ipc_bytes);
  bool saw_batch = false;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(int64_t position, reader.Tell());
    if (position == ipc_bytes->size()) break;
    ARROW_ASSIGN_OR_RAISE(auto message, arrow::ipc::ReadMessage(&reader));
    if (message == nullptr) {
      return arrow::Status::Invalid("block holds an end-of-stream marker at byte ", position);
    }
    if (message->type() != arrow::ipc::MessageType::RECORD_BATCH &&
        message->type() != arrow::ipc::MessageType::DICTIONARY_BATCH) {
      return arrow::Status::Invalid("block holds a message of type ",
                                    arrow::ipc::FormatMessageType(message->type()),
                                    "; only dictionary and record batches belong in a block");
    }
    if (saw_batch) {
      return arrow::Status::Invalid("block holds more than one record batch");
    }
    saw_batch = message->type() == arrow::ipc::MessageType::RECORD_BATCH;
    arrow::ipc::IpcPayload payload;
    payload.type = message->type();
    payload.metadata = message->metadata();
    if (message->body() != nullptr && message->body()->size() > 0) {
      payload.body_buffers.push_back(message->body());
    }
    payload.body_length = message->body_length();
    payloads.push_back(std::move(payload));
  }
  if (!saw_batch) return arrow::Status::Invalid("block holds no record batch");
  return payloads;
}

arrow::Result<std::shared_ptr<arrow::Buffer>> SerializeSchemaMessage(const arrow::Schema& schema) {
  return arrow::ipc::SerializeSchema(schema);
}

// Keeps the batches decoded by the last Consume call only, so a long stream holds no history.
class IpcBlockDecoder::Listener : public arrow::ipc::Listener {
 public:
  arrow::Status OnRecordBatchDecoded(std::shared_ptr<arrow::RecordBatch> batch) override {
    pending.push_back(std::move(batch));
    return arrow::Status::OK();
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> pending;
};

arrow::Result<std::unique_ptr<IpcBlockDecoder>> IpcBlockDecoder::Make(
    const std::shared_ptr<arrow::Schema>& schema) {
  ARROW_ASSIGN_OR_RAISE(auto message, SerializeSchemaMessage(*schema));
  return MakeFromMessage(message);
}

arrow::Result<std::unique_ptr<IpcBlockDecoder>> IpcBlockDecoder::MakeFromMessage(
    const std::shared_ptr<arrow::Buffer>& schema_message) {
  std::unique_ptr<IpcBlockDecoder> decoder(new IpcBlockDecoder());
  decoder->listener_ = std::make_shared<Listener>();
  // Blocks received over the network may sit at any address; misaligned buffers are copied so
  // the decoded arrays have their natural alignment.
  auto options = arrow::ipc::IpcReadOptions::Defaults();
  options.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  decoder->decoder_ =
      std::make_unique<arrow::ipc::StreamDecoder>(decoder->listener_, options);
  ARROW_RETURN_NOT_OK(decoder->decoder_->Consume(schema_message));
  decoder->schema_ = decoder->decoder_->schema();
  decoder->idle_required_size_ = decoder->decoder_->next_required_size();
  if (decoder->schema_ == nullptr) {
    return arrow::Status::Invalid("schema message of ", schema_message->size(),
                                  " bytes did not yield a schema");
  }
  return decoder;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> IpcBlockDecoder::Decode(
    const std::shared_ptr<arrow::Buffer>& ipc_bytes) {
  listener_->pending.clear();
  ARROW_RETURN_NOT_OK(decoder_->Consume(ipc_bytes));
  if (listener_->pending.size() != 1 || decoder_->next_required_size() != idle_required_size_) {
    listener_->pending.clear();
    return arrow::Status::Invalid("block of ", ipc_bytes->size(),
                                  " bytes did not hold exactly one complete record batch");
  }
  auto batch = std::move(listener_->pending.front());
  listener_->pending.clear();
  return batch;
}

}  // namespace sabot
