#include "sabot/memory/partition_buffer.h"

#include <algorithm>

#include <arrow/type.h>
#include <arrow/util/byte_size.h>

#include "sabot/common/error_detail.h"
#include "sabot/common/ids.h"

namespace sabot {

namespace {

int64_t SliceBytes(const arrow::RecordBatch& batch) {
  arrow::Result<int64_t> referenced = arrow::util::ReferencedBufferSize(batch);
  return referenced.ok() ? *referenced : arrow::util::TotalBufferSize(batch);
}

}  // namespace

arrow::Result<std::unique_ptr<PartitionBuffer>> PartitionBuffer::Make(
    StreamKey key, std::shared_ptr<arrow::Schema> schema, PartitionBufferOptions options,
    arrow::MemoryPool* pool, BlockSink sink, MemoryMetrics* metrics) {
  if (options.target_rows < 1 || options.target_bytes < 1) {
    return arrow::Status::Invalid("partition buffer targets must be positive, got ",
                                  options.target_rows, " rows and ", options.target_bytes,
                                  " bytes");
  }
  if (sink == nullptr) return arrow::Status::Invalid("partition buffer needs a sink");
  ARROW_RETURN_NOT_OK(ValidateId(key.shuffle_id, "shuffle id"));
  std::unique_ptr<PartitionBuffer> buffer(new PartitionBuffer());
  ARROW_ASSIGN_OR_RAISE(buffer->encoder_, BlockEncoder::Make(schema, options.codec, pool));
  buffer->key_ = std::move(key);
  buffer->schema_ = std::move(schema);
  buffer->options_ = options;
  buffer->pool_ = pool;
  buffer->sink_ = std::move(sink);
  if (metrics != nullptr) buffer->counters_ = metrics->ForShuffle(buffer->key_.shuffle_id);
  return buffer;
}

PartitionBuffer::~PartitionBuffer() { Account(-buffered_bytes_, -buffered_rows_); }

void PartitionBuffer::Account(int64_t bytes, int64_t rows) {
  if (counters_ == nullptr) return;
  counters_->bytes_buffered.fetch_add(bytes, std::memory_order_relaxed);
  counters_->rows_buffered.fetch_add(rows, std::memory_order_relaxed);
}

arrow::Status PartitionBuffer::Append(std::shared_ptr<arrow::RecordBatch> slice,
                                      Clock::time_point now) {
  ARROW_RETURN_NOT_OK(error_);
  if (finished_) return arrow::Status::Invalid("partition buffer: Append after Finish");
  if (slice == nullptr) return arrow::Status::Invalid("partition buffer: null slice");
  if (!slice->schema()->Equals(*schema_, /*check_metadata=*/false)) {
    return arrow::Status::Invalid("partition buffer: slice schema ", slice->schema()->ToString(),
                                  " does not match ", schema_->ToString());
  }
  if (slice->num_rows() == 0) return arrow::Status::OK();
  if (!oldest_) oldest_ = now;
  int64_t rows = slice->num_rows();
  int64_t bytes = SliceBytes(*slice);
  double bytes_per_row = static_cast<double>(bytes) / static_cast<double>(rows);
  int64_t offset = 0;
  while (offset < rows) {
    int64_t room_rows = options_.target_rows - buffered_rows_;
    int64_t room_bytes = options_.target_bytes - buffered_bytes_;
    int64_t by_bytes =
        bytes_per_row > 0 ? static_cast<int64_t>(static_cast<double>(room_bytes) / bytes_per_row)
                          : rows;
    int64_t take = std::min({rows - offset, room_rows, std::max<int64_t>(by_bytes, 1)});
    if (offset == 0 && take == rows) {
      ARROW_RETURN_NOT_OK(AddSlice(slice, bytes));
    } else {
      auto part = slice->Slice(offset, take);
      ARROW_RETURN_NOT_OK(AddSlice(part, SliceBytes(*part)));
    }
    offset += take;
    if (buffered_rows_ >= options_.target_rows || buffered_bytes_ >= options_.target_bytes) {
      ARROW_RETURN_NOT_OK(Seal());
    }
  }
  return FlushIfDue(now);
}

arrow::Status PartitionBuffer::AddSlice(std::shared_ptr<arrow::RecordBatch> slice,
                                        int64_t bytes) {
  buffered_rows_ += slice->num_rows();
  buffered_bytes_ += bytes;
  Account(bytes, slice->num_rows());
  slices_.push_back(std::move(slice));
  return arrow::Status::OK();
}

arrow::Status PartitionBuffer::Seal() {
  if (slices_.empty()) return arrow::Status::OK();
  std::vector<std::shared_ptr<arrow::RecordBatch>> slices = std::move(slices_);
  slices_.clear();
  const int64_t rows = buffered_rows_;
  Account(-buffered_bytes_, -buffered_rows_);
  buffered_rows_ = 0;
  buffered_bytes_ = 0;
  oldest_.reset();

  auto fail = [this](const arrow::Status& st) {
    ShuffleErrorContext context{key_.shuffle_id, key_.partition_id, key_.writer_task};
    error_ = WithShuffleContext(st, std::move(context));
    return error_;
  };
  std::shared_ptr<arrow::RecordBatch> batch;
  if (slices.size() == 1) {
    batch = std::move(slices.front());
  } else {
    auto concatenated = arrow::ConcatenateRecordBatches(slices, pool_);
    if (!concatenated.ok()) return fail(concatenated.status());
    batch = std::move(*concatenated);
  }
  slices.clear();
  SealedBlock block;
  if (options_.encode) {
    auto encoded = encoder_->Encode(*batch);
    if (!encoded.ok()) return fail(encoded.status());
    block = std::move(*encoded);
  } else {
    block.num_rows = batch->num_rows();
    block.batch = std::move(batch);
  }
  ++blocks_sealed_;
  rows_sealed_ += rows;
  arrow::Status st = sink_(std::move(block));
  if (!st.ok()) return fail(st);
  return arrow::Status::OK();
}

arrow::Status PartitionBuffer::Flush() {
  ARROW_RETURN_NOT_OK(error_);
  return Seal();
}

arrow::Status PartitionBuffer::Finish() {
  ARROW_RETURN_NOT_OK(error_);
  if (finished_) return arrow::Status::OK();
  ARROW_RETURN_NOT_OK(Seal());
  finished_ = true;
  return arrow::Status::OK();
}

std::optional<PartitionBuffer::Clock::time_point> PartitionBuffer::flush_deadline() const {
  if (!oldest_ || options_.buffer_timeout.count() <= 0) return std::nullopt;
  return *oldest_ + std::chrono::duration_cast<Clock::duration>(options_.buffer_timeout);
}

arrow::Status PartitionBuffer::FlushIfDue(Clock::time_point now) {
  ARROW_RETURN_NOT_OK(error_);
  auto deadline = flush_deadline();
  if (deadline && now >= *deadline) return Seal();
  return arrow::Status::OK();
}

}  // namespace sabot
