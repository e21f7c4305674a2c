#include "sabot/memory/partition_buffer.h"

#include <algorithm>

#include <arrow/type.h>

#include "sabot/common/error_detail.h"
#include "sabot/common/ids.h"
#include "sabot/memory/row_bytes.h"

namespace sabot {

arrow::Result<std::unique_ptr<PartitionBuffer>> PartitionBuffer::Make(
    StreamKey key, std::shared_ptr<arrow::Schema> schema, PartitionBufferOptions options,
    arrow::MemoryPool* pool, BlockSink sink, MemoryMetrics* metrics) {
  if (options.target_rows < 1 || options.target_bytes < 1 || options.max_block_bytes < 0) {
    return arrow::Status::Invalid("partition buffer targets must be positive, got ",
                                  options.target_rows, " rows and ", options.target_bytes,
                                  " bytes (max_block_bytes ", options.max_block_bytes,
                                  ", 0 for no limit)");
  }
  if (options.pass_through_bytes < 0) {
    return arrow::Status::Invalid("partition buffer pass_through_bytes must be >= 0, got ",
                                  options.pass_through_bytes);
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
  buffer->fixed_width_ = RowBytes::FixedWidth(*buffer->schema_);
  buffer->has_dictionaries_ = RowBytes::HasDictionaries(*buffer->schema_);
  buffer->block_overhead_ = RowBytes::BlockOverheadBytes(
      *buffer->schema_,
      options.encode && options.codec.compression != arrow::Compression::UNCOMPRESSED);
  buffer->unencoded_overhead_ = RowBytes::BlockOverheadBytes(*buffer->schema_, false);
  buffer->block_capacity_ = options.target_bytes;
  if (options.max_block_bytes > 0) {
    // Room for the rows and dictionaries of a block within its hard limit, after the framing.
    buffer->block_capacity_ = std::max<int64_t>(
        1, std::min(options.target_bytes, options.max_block_bytes - buffer->block_overhead_));
  }
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
  // A large slice for an in-process stream goes on as it is: sealed before and after, it is
  // never concatenated with other rows (only cut at the targets, which copies nothing).
  const bool pass_through =
      !options_.encode &&
      RowBytes::RangeBytes(*slice, 0, slice->num_rows()) >= options_.pass_through_bytes;
  if (pass_through) ARROW_RETURN_NOT_OK(Seal());
  if (!oldest_) oldest_ = now;
  ARROW_RETURN_NOT_OK(fixed_width_ ? AppendFixedWidth(std::move(slice))
                                   : AppendByRowBytes(std::move(slice)));
  if (pass_through) return Seal();
  return FlushIfDue(now);
}

// Every row of a fixed-width schema has the same size: cut by the row width.
arrow::Status PartitionBuffer::AppendFixedWidth(std::shared_ptr<arrow::RecordBatch> slice) {
  int64_t rows = slice->num_rows();
  int64_t bytes = RowBytes::RangeBytes(*slice, 0, rows);
  double bytes_per_row = static_cast<double>(bytes) / static_cast<double>(rows);
  int64_t offset = 0;
  while (offset < rows) {
    int64_t room_rows = options_.target_rows - buffered_rows_;
    int64_t room_bytes = block_capacity_ - buffered_bytes_;
    int64_t by_bytes =
        bytes_per_row > 0 ? static_cast<int64_t>(static_cast<double>(room_bytes) / bytes_per_row)
                          : rows;
    int64_t take = std::min({rows - offset, room_rows, std::max<int64_t>(by_bytes, 1)});
    if (offset == 0 && take == rows) {
      ARROW_RETURN_NOT_OK(AddSlice(slice, bytes));
    } else {
      ARROW_RETURN_NOT_OK(AddSlice(slice->Slice(offset, take),
                                   RowBytes::RangeBytes(*slice, offset, offset + take)));
    }
    offset += take;
    if (buffered_rows_ >= options_.target_rows || buffered_bytes_ >= block_capacity_) {
      ARROW_RETURN_NOT_OK(Seal());
    }
  }
  return arrow::Status::OK();
}

// Rows of different widths: each block takes the longest run of rows whose actual bytes
// (RowBytes: from the offsets of variable-width columns) and dictionaries fit what is left of
// the block's capacity; a row that alone exceeds it goes in a block of its own.
arrow::Status PartitionBuffer::AppendByRowBytes(std::shared_ptr<arrow::RecordBatch> slice) {
  const int64_t rows = slice->num_rows();
  RowBytes::Dictionaries dictionaries;
  if (has_dictionaries_) RowBytes::CollectDictionaries(*slice, &dictionaries);
  std::vector<const arrow::ArrayData*> new_dictionaries;
  int64_t offset = 0;
  while (offset < rows) {
    // The slice's dictionaries this block does not carry yet.
    new_dictionaries.clear();
    int64_t new_dictionary_bytes = 0;
    for (const auto& [dictionary, bytes] : dictionaries) {
      if (std::find(block_dictionaries_.begin(), block_dictionaries_.end(), dictionary) ==
          block_dictionaries_.end()) {
        new_dictionaries.push_back(dictionary);
        new_dictionary_bytes += bytes;
      }
    }
    const int64_t room_rows = std::min(options_.target_rows - buffered_rows_, rows - offset);
    const int64_t room_bytes = block_capacity_ - buffered_bytes_ - new_dictionary_bytes;
    int64_t take = RowBytes::RowsWithin(*slice, offset, room_rows, room_bytes);
    if (take == 0 && buffered_rows_ > 0) {
      // The next row does not fit beside what is buffered: it starts the next block.
      ARROW_RETURN_NOT_OK(Seal());
      continue;
    }
    // take == 0 here: a row larger than a block's capacity, alone in its block; Emit refuses it
    // only if its encoded block exceeds max_block_bytes.
    take = std::max<int64_t>(take, 1);
    const int64_t bytes =
        RowBytes::RangeBytes(*slice, offset, offset + take) + new_dictionary_bytes;
    block_dictionaries_.insert(block_dictionaries_.end(), new_dictionaries.begin(),
                               new_dictionaries.end());
    ARROW_RETURN_NOT_OK(
        AddSlice(offset == 0 && take == rows ? slice : slice->Slice(offset, take), bytes));
    offset += take;
    if (offset < rows || buffered_rows_ >= options_.target_rows ||
        buffered_bytes_ >= block_capacity_) {
      ARROW_RETURN_NOT_OK(Seal());
    }
  }
  return arrow::Status::OK();
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
  block_dictionaries_.clear();
  Account(-buffered_bytes_, -buffered_rows_);
  buffered_rows_ = 0;
  buffered_bytes_ = 0;
  oldest_.reset();

  std::shared_ptr<arrow::RecordBatch> batch;
  if (slices.size() == 1) {
    batch = std::move(slices.front());
  } else {
    auto concatenated = arrow::ConcatenateRecordBatches(slices, pool_);
    if (!concatenated.ok()) return Fail(concatenated.status());
    batch = std::move(*concatenated);
  }
  slices.clear();
  return Fail(Emit(std::move(batch)));
}

arrow::Status PartitionBuffer::Fail(const arrow::Status& status) {
  if (status.ok()) return status;
  ShuffleErrorContext context{key_.shuffle_id, key_.partition_id, key_.writer_task};
  error_ = WithShuffleContext(status, std::move(context));
  return error_;
}

int64_t PartitionBuffer::DictionaryBytes(const arrow::RecordBatch& batch) const {
  if (!has_dictionaries_) return 0;
  RowBytes::Dictionaries dictionaries;
  RowBytes::CollectDictionaries(batch, &dictionaries);
  int64_t bytes = 0;
  for (const auto& entry : dictionaries) bytes += entry.second;
  return bytes;
}

arrow::Status PartitionBuffer::Emit(std::shared_ptr<arrow::RecordBatch> batch) {
  const int64_t rows = batch->num_rows();
  SealedBlock block;
  if (options_.encode) {
    ARROW_ASSIGN_OR_RAISE(block, encoder_->Encode(*batch));
    if (!fixed_width_ &&
        block.size_bytes() > RowBytes::RangeBytes(*batch, 0, rows) + DictionaryBytes(*batch) +
                                 block_overhead_) {
      // Arrow's IPC writer sends the whole buffers of a zero-length array, also of a nested one
      // (the strings of list rows that are all empty): a slice then drags along bytes of its
      // parent batch that none of its rows reference. Copy the rows out and encode them again.
      ARROW_ASSIGN_OR_RAISE(batch, arrow::ConcatenateRecordBatches({batch}, pool_));
      ARROW_ASSIGN_OR_RAISE(block, encoder_->Encode(*batch));
    }
  } else {
    block.num_rows = rows;
    block.batch = batch;
  }
  // An unencoded block's size_bytes() walks the byte ranges its batch references (cheap for the
  // column types RowBytes::ReferencedBytes covers; Arrow builds arrays to list the others:
  // several microseconds a call). Two cheap upper bounds of it: the batch's
  // buffers whole (exact for a concatenation), and its rows' bytes with their dictionaries and
  // the rounding BlockOverheadBytes bounds (tight for a slice, which references a part of its
  // parent's buffers); when either fits, so does the block.
  const bool surely_fits =
      !block.encoded() &&
      (RowBytes::BufferBytes(*batch) <= options_.max_block_bytes ||
       RowBytes::RangeBytes(*batch, 0, rows) + DictionaryBytes(*batch) +
               unencoded_overhead_ <=
           options_.max_block_bytes);
  if (options_.max_block_bytes > 0 && !surely_fits &&
      block.size_bytes() > options_.max_block_bytes) {
    const int64_t row_bytes = RowBytes::RangeBytes(*batch, 0, rows);
    if (rows == 1) {
      const int64_t dictionary_bytes = DictionaryBytes(*batch);
      return arrow::Status::CapacityError(
          "a row of ", row_bytes, " bytes cannot be sent: its block needs ", block.size_bytes(),
          " bytes (with ", dictionary_bytes, " bytes of dictionaries and the IPC framing), more "
          "than the ", options_.max_block_bytes, " bytes a block of this stream can ever have "
          "(what its pipelined channel can reserve in network segments). Rows this large need "
          "larger or more network segments (segment size, floating segments per shuffle) or a "
          "blocking shuffle");
    }
    // The bound missed (e.g. data that compression grew): drop this encoding and cut the rows
    // in two halves by bytes, each emitted (and checked) on its own.
    block = SealedBlock();
    const int64_t half =
        std::max<int64_t>(RowBytes::RowsWithin(*batch, 0, rows - 1, row_bytes / 2), 1);
    ARROW_RETURN_NOT_OK(Emit(batch->Slice(0, half)));
    return Emit(batch->Slice(half));
  }
  ++blocks_sealed_;
  rows_sealed_ += rows;
  return sink_(std::move(block));
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
