#include "sabot/memory/block_codec.h"

#include <vector>

#include <arrow/io/memory.h>
#include <arrow/ipc/message.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/bit_util.h>

#include "sabot/memory/crc32c.h"

namespace sabot {

namespace {

// Bytes WriteIpcPayload writes for `payload`: the 8-byte prefix (continuation marker and
// length) and the flatbuffer, padded to 8 bytes, then the body (its buffers already padded).
int64_t EncodedPayloadSize(const arrow::ipc::IpcPayload& payload) {
  int64_t metadata = payload.metadata ? payload.metadata->size() : 0;
  return arrow::bit_util::RoundUpToMultipleOf8(metadata + 8) + payload.body_length;
}

arrow::Result<std::shared_ptr<arrow::Buffer>> WritePayloads(
    const std::vector<arrow::ipc::IpcPayload>& payloads,
    const arrow::ipc::IpcWriteOptions& options, arrow::MemoryPool* pool) {
  int64_t capacity = 0;
  for (const auto& payload : payloads) capacity += EncodedPayloadSize(payload);
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::BufferOutputStream::Create(capacity, pool));
  for (const auto& payload : payloads) {
    int32_t metadata_length = 0;
    ARROW_RETURN_NOT_OK(arrow::ipc::WriteIpcPayload(payload, options, out.get(), &metadata_length));
  }
  return out->Finish();
}

// Passes writes on to `out`, counting the bytes and their crc32c.
class ChecksummingStream final : public arrow::io::OutputStream {
 public:
  explicit ChecksummingStream(arrow::io::OutputStream* out) : out_(out) {}

  arrow::Status Write(const void* data, int64_t nbytes) override {
    ARROW_RETURN_NOT_OK(out_->Write(data, nbytes));
    crc_ = Crc32c(data, static_cast<size_t>(nbytes), crc_);
    length_ += nbytes;
    return arrow::Status::OK();
  }
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return length_; }

  int64_t length() const { return length_; }
  uint32_t crc() const { return crc_; }

 private:
  arrow::io::OutputStream* out_;
  int64_t length_ = 0;
  uint32_t crc_ = 0;
  bool closed_ = false;
};

}  // namespace

arrow::Result<arrow::Compression::type> ParseBlockCompression(const std::string& name) {
  if (name == "uncompressed" || name == "none") return arrow::Compression::UNCOMPRESSED;
  if (name == "lz4" || name == "lz4_frame") return arrow::Compression::LZ4_FRAME;
  if (name == "zstd") return arrow::Compression::ZSTD;
  return arrow::Status::Invalid("unknown block compression '", name,
                                "' (expected uncompressed, lz4 or zstd)");
}

arrow::Result<std::unique_ptr<BlockEncoder>> BlockEncoder::Make(
    std::shared_ptr<arrow::Schema> schema, BlockCodecOptions options, arrow::MemoryPool* pool) {
  if (schema == nullptr) return arrow::Status::Invalid("block encoder needs a schema");
  if (pool == nullptr) return arrow::Status::Invalid("block encoder needs a memory pool");
  std::unique_ptr<BlockEncoder> encoder(new BlockEncoder());
  encoder->schema_ = std::move(schema);
  encoder->options_ = options;
  encoder->pool_ = pool;
  auto& wo = encoder->write_options_;
  wo = arrow::ipc::IpcWriteOptions::Defaults();
  wo.memory_pool = pool;
  wo.use_threads = false;
  wo.emit_dictionary_deltas = false;
  switch (options.compression) {
    case arrow::Compression::UNCOMPRESSED:
      break;
    case arrow::Compression::LZ4_FRAME:
    case arrow::Compression::ZSTD: {
      if (!arrow::util::Codec::IsAvailable(options.compression)) {
        return arrow::Status::NotImplemented(
            "block compression ", arrow::util::Codec::GetCodecAsString(options.compression),
            " is not available in this Arrow build");
      }
      int level = options.compression_level.value_or(arrow::util::kUseDefaultCompressionLevel);
      ARROW_ASSIGN_OR_RAISE(wo.codec, arrow::util::Codec::Create(options.compression, level));
      break;
    }
    default:
      return arrow::Status::Invalid(
          "block compression must be uncompressed, LZ4_FRAME or ZSTD, got ",
          arrow::util::Codec::GetCodecAsString(options.compression));
  }
  encoder->mapper_ = std::make_unique<arrow::ipc::DictionaryFieldMapper>(*encoder->schema_);
  arrow::ipc::IpcPayload schema_payload;
  ARROW_RETURN_NOT_OK(arrow::ipc::GetSchemaPayload(*encoder->schema_, wo, *encoder->mapper_,
                                                   &schema_payload));
  ARROW_ASSIGN_OR_RAISE(encoder->schema_message_,
                        WritePayloads({schema_payload}, wo, arrow::default_memory_pool()));
  return encoder;
}

arrow::Result<std::vector<arrow::ipc::IpcPayload>> BlockEncoder::Payloads(
    const arrow::RecordBatch& batch, const arrow::ipc::IpcWriteOptions& options) const {
  if (!batch.schema()->Equals(*schema_, /*check_metadata=*/false)) {
    return arrow::Status::Invalid("batch schema ", batch.schema()->ToString(),
                                  " does not match the stream's schema ", schema_->ToString());
  }
  ARROW_ASSIGN_OR_RAISE(auto dictionaries, arrow::ipc::CollectDictionaries(batch, *mapper_));
  std::vector<arrow::ipc::IpcPayload> payloads(dictionaries.size() + 1);
  for (size_t i = 0; i < dictionaries.size(); ++i) {
    ARROW_RETURN_NOT_OK(arrow::ipc::GetDictionaryPayload(
        dictionaries[i].first, /*is_delta=*/false, dictionaries[i].second, options,
        &payloads[i]));
  }
  ARROW_RETURN_NOT_OK(arrow::ipc::GetRecordBatchPayload(batch, options, &payloads.back()));
  return payloads;
}

arrow::Result<BlockEncoder::Extent> BlockEncoder::EncodeTo(const arrow::RecordBatch& batch,
                                                           arrow::io::OutputStream* out) const {
  // What is allocated here (the messages' metadata, and compressed bodies if compressed) lives
  // only while the block is written, and comes from the default pool: a spill must never wait
  // for the budget it is freeing.
  arrow::ipc::IpcWriteOptions options = write_options_;
  options.memory_pool = arrow::default_memory_pool();
  ARROW_ASSIGN_OR_RAISE(auto payloads, Payloads(batch, options));
  ChecksummingStream counted(out);
  for (const auto& payload : payloads) {
    int32_t metadata_length = 0;
    ARROW_RETURN_NOT_OK(arrow::ipc::WriteIpcPayload(payload, options, &counted, &metadata_length));
  }
  return Extent{counted.length(), counted.crc()};
}

arrow::Result<SealedBlock> BlockEncoder::Encode(const arrow::RecordBatch& batch) const {
  ARROW_ASSIGN_OR_RAISE(auto payloads, Payloads(batch, write_options_));
  SealedBlock block;
  ARROW_ASSIGN_OR_RAISE(block.ipc_bytes, WritePayloads(payloads, write_options_, pool_));
  block.num_rows = batch.num_rows();
  block.crc32c = Crc32c(block.ipc_bytes->data(), static_cast<size_t>(block.ipc_bytes->size()));
  return block;
}

arrow::Result<SealedBlock> BlockEncoder::EnsureEncoded(const SealedBlock& block) const {
  if (block.encoded()) return block;
  if (block.batch == nullptr) return arrow::Status::Invalid("block has neither bytes nor batch");
  return Encode(*block.batch);
}

// Feeds the stream reader the schema message once, then the messages of the current block.
class BlockDecoder::MessageSource : public arrow::ipc::MessageReader {
 public:
  explicit MessageSource(std::unique_ptr<arrow::ipc::Message> schema)
      : schema_(std::move(schema)) {}

  void SetBlock(std::shared_ptr<arrow::Buffer> bytes) {
    block_size_ = bytes->size();
    block_ = std::make_unique<arrow::io::BufferReader>(std::move(bytes));
  }
  // Bytes of the current block not consumed yet.
  arrow::Result<int64_t> Remaining() const {
    ARROW_ASSIGN_OR_RAISE(int64_t position, block_->Tell());
    return block_size_ - position;
  }

  arrow::Result<std::unique_ptr<arrow::ipc::Message>> ReadNextMessage() override {
    if (schema_ != nullptr) return std::move(schema_);
    if (block_ == nullptr) return nullptr;
    return arrow::ipc::ReadMessage(block_.get());
  }

 private:
  std::unique_ptr<arrow::ipc::Message> schema_;
  std::unique_ptr<arrow::io::BufferReader> block_;
  int64_t block_size_ = 0;
};

BlockDecoder::~BlockDecoder() = default;

arrow::Result<std::unique_ptr<BlockDecoder>> BlockDecoder::Make(
    std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool) {
  if (schema == nullptr) return arrow::Status::Invalid("block decoder needs a schema");
  std::unique_ptr<BlockDecoder> decoder(new BlockDecoder());
  decoder->schema_ = schema;
  // The schema message an encoder of this stream writes: it assigns the dictionary ids.
  ARROW_ASSIGN_OR_RAISE(auto encoder, BlockEncoder::Make(schema, {}, pool));
  arrow::io::BufferReader schema_reader(encoder->schema_message());
  ARROW_ASSIGN_OR_RAISE(auto schema_message, arrow::ipc::ReadMessage(&schema_reader));
  auto source = std::make_unique<MessageSource>(std::move(schema_message));
  decoder->source_ = source.get();
  auto read_options = arrow::ipc::IpcReadOptions::Defaults();
  read_options.memory_pool = pool;
  read_options.use_threads = false;
  ARROW_ASSIGN_OR_RAISE(decoder->reader_, arrow::ipc::RecordBatchStreamReader::Open(
                                              std::move(source), read_options));
  return decoder;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> BlockDecoder::Decode(const SealedBlock& block,
                                                                        bool verify_checksum) {
  if (!block.encoded()) {
    if (block.batch == nullptr) return arrow::Status::Invalid("block has neither bytes nor batch");
    return block.batch;
  }
  const auto& bytes = *block.ipc_bytes;
  if (verify_checksum) {
    uint32_t crc = Crc32c(bytes.data(), static_cast<size_t>(bytes.size()));
    if (crc != block.crc32c) {
      return arrow::Status::IOError("block checksum mismatch: crc32c of its ", bytes.size(),
                                    " bytes is ", crc, ", expected ", block.crc32c);
    }
  }
  source_->SetBlock(block.ipc_bytes);
  std::shared_ptr<arrow::RecordBatch> batch;
  ARROW_RETURN_NOT_OK(reader_->ReadNext(&batch));
  if (batch == nullptr) return arrow::Status::Invalid("block holds no record batch");
  ARROW_ASSIGN_OR_RAISE(int64_t remaining, source_->Remaining());
  if (remaining != 0) {
    return arrow::Status::Invalid("block has ", remaining, " bytes after its record batch");
  }
  if (batch->num_rows() != block.num_rows) {
    return arrow::Status::Invalid("block holds ", batch->num_rows(), " rows, its header says ",
                                  block.num_rows);
  }
  return batch;
}

}  // namespace sabot
