#include "sabot/memory/spill_file.h"

#include "sabot/common/error_detail.h"
#include "sabot/common/logging.h"
#include "sabot/memory/crc32c.h"

namespace sabot {

arrow::Result<std::unique_ptr<SpillFileWriter>> SpillFileWriter::Open(
    std::shared_ptr<arrow::fs::FileSystem> filesystem, std::string path,
    std::shared_ptr<arrow::Buffer> schema_message) {
  if (filesystem == nullptr) return arrow::Status::Invalid("spill file needs a filesystem");
  std::unique_ptr<SpillFileWriter> writer(new SpillFileWriter());
  writer->filesystem_ = filesystem;
  writer->path_ = std::move(path);
  ARROW_ASSIGN_OR_RAISE(auto info, filesystem->GetFileInfo(writer->path_));
  const bool exists = info.type() == arrow::fs::FileType::File;
  auto opened = filesystem->OpenAppendStream(writer->path_);
  if (!opened.ok()) {
    return arrow::Status::IOError("cannot open spill file ", writer->path_, ": ",
                                  StatusCause(opened.status()));
  }
  writer->out_ = std::move(*opened);
  if (exists) {
    // Offsets continue from the file's end; a failed append may have left bytes there that no
    // location points to.
    writer->position_ = info.size();
  } else {
    arrow::Status st = writer->out_->Write(schema_message);
    if (!st.ok()) {
      // A file without its whole schema would not be an IPC stream: remove it, so the next
      // attempt starts afresh.
      arrow::Status failed = writer->Fail(st, "writing the schema", schema_message->size());
      (void)writer->out_->Close();
      (void)filesystem->DeleteFile(writer->path_);
      return failed;
    }
    writer->position_ = schema_message->size();
  }
  return writer;
}

SpillFileWriter::~SpillFileWriter() {
  if (out_ != nullptr && !out_->closed()) {
    arrow::Status st = out_->Close();
    if (!st.ok()) {
      SABOT_LOG(kWarning) << "closing spill file " << path_ << ": " << st.ToString();
    }
  }
}

arrow::Status SpillFileWriter::Fail(const arrow::Status& st, const char* doing, int64_t bytes) {
  if (bytes >= 0) {
    error_ = arrow::Status::IOError("spill failed ", doing, " (", bytes, " bytes at offset ",
                                    position_, ") to ", path_, ": ", StatusCause(st));
  } else {
    error_ = arrow::Status::IOError("spill failed ", doing, " ", path_, ": ", StatusCause(st));
  }
  return error_;
}

arrow::Result<SpillBlockLocation> SpillFileWriter::Append(const SealedBlock& block) {
  ARROW_RETURN_NOT_OK(error_);
  if (block.is_event()) {
    arrow::Status st = out_->Write(block.event);
    if (!st.ok()) return Fail(st, "writing an event", block.event->size());
    SpillBlockLocation location;
    location.offset = position_;
    location.length = block.event->size();
    location.crc32c = block.crc32c;
    location.event = true;
    position_ += location.length;
    return location;
  }
  if (!block.encoded()) return arrow::Status::Invalid("only encoded blocks can be spilled");
  arrow::Status st = out_->Write(block.ipc_bytes);
  if (!st.ok()) return Fail(st, "writing a block", block.ipc_bytes->size());
  SpillBlockLocation location;
  location.offset = position_;
  location.length = block.ipc_bytes->size();
  location.num_rows = block.num_rows;
  location.crc32c = block.crc32c;
  position_ += location.length;
  return location;
}

arrow::Result<SpillBlockLocation> SpillFileWriter::Append(const SealedBlock& block,
                                                          const BlockEncoder& encoder) {
  if (block.encoded() || block.is_event()) return Append(block);
  ARROW_RETURN_NOT_OK(error_);
  if (block.batch == nullptr) return arrow::Status::Invalid("block has neither bytes nor batch");
  auto written = encoder.EncodeTo(*block.batch, out_.get());
  if (!written.ok()) {
    // Part of the block may be in the file; nothing points to it, and the writer is poisoned.
    // The size is the block's in memory: how much of it was encoded when the write failed is
    // not known.
    if (written.status().IsIOError()) {
      return Fail(written.status(), "writing a block", block.size_bytes());
    }
    error_ = written.status().WithMessage("spill failed encoding a block for ", path_, ": ",
                                          written.status().message());
    return error_;
  }
  SpillBlockLocation location;
  location.offset = position_;
  location.length = written->length;
  location.num_rows = block.num_rows;
  location.crc32c = written->crc32c;
  position_ += location.length;
  return location;
}

arrow::Status SpillFileWriter::Flush() {
  ARROW_RETURN_NOT_OK(error_);
  arrow::Status st = out_->Flush();
  if (!st.ok()) return Fail(st, "flushing", -1);
  return arrow::Status::OK();
}

arrow::Status SpillFileWriter::Close() {
  if (out_ == nullptr || out_->closed()) return error_;
  arrow::Status st = out_->Close();
  if (!st.ok() && error_.ok()) return Fail(st, "closing", -1);
  return error_;
}

arrow::Result<std::unique_ptr<SpillFileReader>> SpillFileReader::Open(
    std::shared_ptr<arrow::fs::FileSystem> filesystem, std::string path) {
  std::unique_ptr<SpillFileReader> reader(new SpillFileReader());
  reader->path_ = std::move(path);
  auto opened = filesystem->OpenInputFile(reader->path_);
  if (!opened.ok()) {
    return arrow::Status::IOError("cannot open spill file ", reader->path_, ": ",
                                  StatusCause(opened.status()));
  }
  reader->file_ = std::move(*opened);
  return reader;
}

SpillFileReader::~SpillFileReader() {
  if (file_ != nullptr && !file_->closed()) {
    arrow::Status st = file_->Close();
    if (!st.ok()) {
      SABOT_LOG(kWarning) << "closing spill file " << path_ << ": " << st.ToString();
    }
  }
}

arrow::Result<SealedBlock> SpillFileReader::Read(const SpillBlockLocation& location,
                                                 arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> bytes,
                        arrow::AllocateBuffer(location.length, pool));
  auto read = file_->ReadAt(location.offset, location.length, bytes->mutable_data());
  if (!read.ok()) {
    return arrow::Status::IOError("cannot read spill file ", path_, " at offset ",
                                  location.offset, ": ", StatusCause(read.status()));
  }
  if (*read != location.length) {
    return arrow::Status::IOError("spill file ", path_, " is truncated: the block at offset ",
                                  location.offset, " has ", location.length, " bytes, only ",
                                  *read, " could be read");
  }
  uint32_t crc = Crc32c(bytes->data(), static_cast<size_t>(bytes->size()));
  if (crc != location.crc32c) {
    return arrow::Status::IOError("spill file ", path_, " is corrupted: the block at offset ",
                                  location.offset, " (", location.length,
                                  " bytes) fails its crc32c check");
  }
  SealedBlock block;
  if (location.event) {
    block.event = std::move(bytes);
  } else {
    block.ipc_bytes = std::move(bytes);
    block.num_rows = location.num_rows;
  }
  block.crc32c = crc;
  return block;
}

}  // namespace sabot
