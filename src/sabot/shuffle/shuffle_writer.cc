#include "sabot/shuffle/shuffle_writer.h"

#include <utility>

#include <arrow/array/concatenate.h>

#include "sabot/common/error_detail.h"
#include "sabot/memory/budget_pool.h"

namespace sabot {

namespace {

PartitionBufferOptions BufferOptions(const ShuffleOptions& options, bool encode_blocks) {
  PartitionBufferOptions out;
  out.target_rows = options.target_block_rows;
  out.target_bytes = options.target_block_bytes;
  out.buffer_timeout = options.buffer_timeout;
  out.encode = encode_blocks;
  out.codec.compression = options.compression;
  return out;
}

}  // namespace

arrow::Result<std::unique_ptr<ShuffleWriter>> ShuffleWriter::Make(
    std::shared_ptr<const ShuffleDescriptor> descriptor, TaskIndex writer_task, int32_t attempt,
    const BlockOutputFactory& open_output, bool encode_blocks, arrow::MemoryPool* pool,
    MemoryMetrics* metrics, WriterMode mode) {
  ARROW_RETURN_NOT_OK(descriptor->Validate());
  ShuffleErrorContext where{.shuffle_id = descriptor->shuffle_id, .writer_task = writer_task};
  ARROW_RETURN_NOT_OK(WithShuffleContext(descriptor->CheckWriterTask(writer_task), where));
  if (attempt < 0) {
    return WithShuffleContext(arrow::Status::Invalid("writer attempt must be >= 0, got ", attempt),
                              where);
  }
  std::unique_ptr<ShuffleWriter> writer(new ShuffleWriter());
  writer->descriptor_ = descriptor;
  writer->writer_task_ = writer_task;
  writer->pool_ = pool;
  writer->budget_ = dynamic_cast<BudgetedMemoryPool*>(pool);
  writer->copy_caller_batches_ =
      descriptor->options.mode == ShuffleMode::kBlocking && !encode_blocks;
  writer->non_blocking_ = mode.non_blocking;
  if (mode.non_blocking && mode.on_ready) {
    writer->on_ready_ = std::make_shared<const std::function<void()>>(std::move(mode.on_ready));
  }
  ARROW_ASSIGN_OR_RAISE(writer->partitioner_, MakePartitioner(descriptor->spec, descriptor->schema,
                                                              writer_task, pool));
  const int32_t n = descriptor->num_partitions();
  if (writer->non_blocking_) writer->outboxes_.resize(n);
  writer->stats_.partition_rows.assign(n, 0);
  writer->stats_.partition_bytes.assign(n, 0);
  PartitionBufferOptions buffer_options = BufferOptions(descriptor->options, encode_blocks);
  ShuffleWriter* self = writer.get();
  for (PartitionId p = 0; p < n; ++p) {
    StreamKey key{descriptor->shuffle_id, p, writer_task, attempt};
    auto output = open_output(key, descriptor->schema);
    if (!output.ok()) {
      where.partition_id = p;
      return WithShuffleContext(output.status(), where);
    }
    writer->outputs_.push_back(std::move(output).ValueUnsafe());
    if (writer->on_ready_ != nullptr) {
      // The callback holds the wake-up, not the writer: it may run after the writer is gone.
      writer->outputs_.back()->SetOnWritable([wake = writer->on_ready_] { (*wake)(); });
    }
    // Blocks must fit what this partition's output can ever take (a channel's segments).
    buffer_options.max_block_bytes = writer->outputs_.back()->max_block_bytes();
    ARROW_ASSIGN_OR_RAISE(
        auto buffer,
        PartitionBuffer::Make(
            key, descriptor->schema, buffer_options, pool,
            [self, p](SealedBlock block) { return self->SendBlock(p, std::move(block)); },
            metrics));
    writer->buffers_.push_back(std::move(buffer));
  }
  return writer;
}

ShuffleWriter::~ShuffleWriter() {
  if (!finished_ && error_.ok()) {
    Abort(arrow::Status::Cancelled("writer task ", writer_task_, " of shuffle '",
                                   descriptor_->shuffle_id, "' was destroyed before Finish"));
  }
}

arrow::Status ShuffleWriter::CheckWritable() const {
  if (!error_.ok()) return error_;
  if (finished_) {
    return WithShuffleContext(arrow::Status::Invalid("the writer has already finished"),
                              {.shuffle_id = descriptor_->shuffle_id, .writer_task = writer_task_});
  }
  if (finishing_) {
    return WithShuffleContext(
        arrow::Status::Invalid("the writer is finishing (TryFinish was called): nothing more can "
                               "be written"),
        {.shuffle_id = descriptor_->shuffle_id, .writer_task = writer_task_});
  }
  return arrow::Status::OK();
}

arrow::Status ShuffleWriter::Fail(arrow::Status status) {
  if (status.ok()) return status;
  status = WithShuffleContext(status,
                              {.shuffle_id = descriptor_->shuffle_id, .writer_task = writer_task_});
  if (error_.ok()) Abort(status);
  return status;
}

void ShuffleWriter::Cancel(const arrow::Status& cause) {
  cancelled_.store(true, std::memory_order_release);
  // outputs_ is fixed from Make() to destruction, and each output's Cancel is thread-safe.
  for (auto& output : outputs_) output->Cancel(cause);
  // The task learns of it at its next call, whatever it waits for.
  if (on_ready_ != nullptr) (*on_ready_)();
}

void ShuffleWriter::Abort(const arrow::Status& cause) {
  if (error_.ok()) error_ = cause.ok() ? arrow::Status::Cancelled("writer aborted") : cause;
  for (auto& output : outputs_) {
    if (output) (void)output->Abort(error_);
  }
  DropPending();
}

void ShuffleWriter::DropPending() {
  if (pending_blocks_ == 0) return;
  stats_.blocked += std::chrono::steady_clock::now() - pending_since_;
  // Dropping a block returns its network segments.
  for (auto& outbox : outboxes_) outbox.clear();
  pending_blocks_ = 0;
}

arrow::Status ShuffleWriter::CheckNothingPending() const {
  if (pending_blocks_ == 0) return arrow::Status::OK();
  return WithShuffleContext(
      arrow::Status::Invalid("the previous batch left ", pending_blocks_,
                             " blocks waiting for credit: call Drain() until has_pending() is "
                             "false before writing another batch"),
      {.shuffle_id = descriptor_->shuffle_id, .writer_task = writer_task_});
}

arrow::Status ShuffleWriter::SendBlock(PartitionId partition_id, SealedBlock block) {
  BlockOutput& output = *outputs_[partition_id];
  const int64_t bytes = block.size_bytes();
  stats_.blocks += 1;
  stats_.block_bytes += bytes;
  stats_.partition_bytes[partition_id] += bytes;
  ShuffleErrorContext where{.shuffle_id = descriptor_->shuffle_id, .partition_id = partition_id,
                            .writer_task = writer_task_};
  if (non_blocking_) {
    std::deque<SealedBlock>& outbox = outboxes_[partition_id];
    if (outbox.empty()) {
      auto sent = output.TryWrite(&block);
      if (!sent.ok()) return WithShuffleContext(sent.status(), where);
      if (*sent) return arrow::Status::OK();
    }
    // Behind the blocks already waiting, so the stream keeps its order.
    if (pending_blocks_ == 0) pending_since_ = std::chrono::steady_clock::now();
    outbox.push_back(std::move(block));
    ++pending_blocks_;
    return arrow::Status::OK();
  }
  const auto blocked_before = output.blocked();
  arrow::Status status = output.Write(std::move(block));
  stats_.blocked += output.blocked() - blocked_before;
  return WithShuffleContext(status, where);
}

arrow::Status ShuffleWriter::Drain() {
  if (!error_.ok()) return error_;
  AllocationWaitCancel wait_cancel(&cancelled_);
  for (PartitionId p = 0; p < static_cast<PartitionId>(outboxes_.size()); ++p) {
    std::deque<SealedBlock>& outbox = outboxes_[p];
    while (!outbox.empty()) {
      auto sent = outputs_[p]->TryWrite(&outbox.front());
      if (!sent.ok()) {
        return Fail(WithShuffleContext(sent.status(), {.shuffle_id = descriptor_->shuffle_id,
                                                       .partition_id = p,
                                                       .writer_task = writer_task_}));
      }
      if (!*sent) break;
      outbox.pop_front();
      if (--pending_blocks_ == 0) {
        stats_.blocked += std::chrono::steady_clock::now() - pending_since_;
      }
    }
  }
  return arrow::Status::OK();
}

namespace {

// A copy of `batch` in buffers of its own, allocated from `pool`.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> CopyBatch(const arrow::RecordBatch& batch,
                                                             arrow::MemoryPool* pool) {
  arrow::ArrayVector columns;
  for (const auto& column : batch.columns()) {
    ARROW_ASSIGN_OR_RAISE(auto copied, arrow::Concatenate({column}, pool));
    columns.push_back(std::move(copied));
  }
  return arrow::RecordBatch::Make(batch.schema(), batch.num_rows(), std::move(columns));
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ShuffleWriter::Budgeted(
    const std::shared_ptr<arrow::RecordBatch>& part,
    const std::shared_ptr<arrow::RecordBatch>& batch, std::shared_ptr<arrow::RecordBatch>* copy) {
  // Partitioners hand on the caller's batch object itself (BROADCAST, FORWARD, all rows to one
  // partition); anything else they made is theirs, in the budget.
  if (part.get() == batch.get()) {
    if (!copy_caller_batches_) return part;
    if (*copy == nullptr) {
      ARROW_ASSIGN_OR_RAISE(*copy, CopyBatch(*batch, pool_));
    }
    return *copy;
  }
  // A part is a slice of buffers the partitioner wrote for the whole batch, which it keeps
  // alive while buffered or stored. With the budget more than half used, a small part is copied
  // out, so that what a partition buffer holds for long (a sparse partition's rows) does not pin
  // the whole partitioned batch beyond its budget share.
  if (budget_ != nullptr && part->num_rows() * kSmallPartDivisor < batch->num_rows() &&
      budget_->bytes_allocated() > budget_->budget() / 2) {
    return CopyBatch(*part, pool_);
  }
  return part;
}

arrow::Status ShuffleWriter::Write(const std::shared_ptr<arrow::RecordBatch>& batch) {
  AllocationWaitCancel wait_cancel(&cancelled_);
  ARROW_RETURN_NOT_OK(CheckWritable());
  ARROW_RETURN_NOT_OK(CheckNothingPending());
  if (batch == nullptr) return arrow::Status::Invalid("cannot write a null batch");
  auto parts = partitioner_->Partition(batch);
  if (!parts.ok()) return WithShuffleContext(parts.status(), {.shuffle_id = descriptor_->shuffle_id,
                                                              .writer_task = writer_task_});
  stats_.batches += 1;
  stats_.rows += batch->num_rows();
  auto now = PartitionBuffer::Clock::now();
  std::shared_ptr<arrow::RecordBatch> copy;
  for (PartitionId p = 0; p < parts->num_partitions(); ++p) {
    auto& part = parts->batches[p];
    if (part == nullptr) continue;
    stats_.partition_rows[p] += part->num_rows();
    auto budgeted = Budgeted(part, batch, &copy);
    if (!budgeted.ok()) return Fail(budgeted.status());
    part.reset();
    ARROW_RETURN_NOT_OK(Fail(buffers_[p]->Append(std::move(budgeted).ValueUnsafe(), now)));
  }
  return FlushIfDue();
}

arrow::Status ShuffleWriter::WritePartition(PartitionId partition_id,
                                            const std::shared_ptr<arrow::RecordBatch>& batch) {
  AllocationWaitCancel wait_cancel(&cancelled_);
  ARROW_RETURN_NOT_OK(CheckWritable());
  ARROW_RETURN_NOT_OK(CheckNothingPending());
  ShuffleErrorContext where{.shuffle_id = descriptor_->shuffle_id, .partition_id = partition_id,
                            .writer_task = writer_task_};
  ARROW_RETURN_NOT_OK(WithShuffleContext(descriptor_->CheckPartition(partition_id), where));
  if (batch == nullptr) {
    return WithShuffleContext(arrow::Status::Invalid("cannot write a null batch"), where);
  }
  arrow::Status same = CheckSameFields(*descriptor_->schema, *batch->schema());
  if (!same.ok()) return WithShuffleContext(same, where);
  stats_.batches += 1;
  stats_.rows += batch->num_rows();
  stats_.partition_rows[partition_id] += batch->num_rows();
  if (batch->num_rows() > 0) {
    std::shared_ptr<arrow::RecordBatch> copy;
    auto budgeted = Budgeted(batch, batch, &copy);
    if (!budgeted.ok()) return Fail(budgeted.status());
    ARROW_RETURN_NOT_OK(Fail(buffers_[partition_id]->Append(std::move(budgeted).ValueUnsafe())));
  }
  return FlushIfDue();
}

arrow::Status ShuffleWriter::FlushPartition(PartitionId partition_id) {
  AllocationWaitCancel wait_cancel(&cancelled_);
  ARROW_RETURN_NOT_OK(CheckWritable());
  ARROW_RETURN_NOT_OK(
      WithShuffleContext(descriptor_->CheckPartition(partition_id),
                         {.shuffle_id = descriptor_->shuffle_id, .writer_task = writer_task_}));
  return Fail(buffers_[partition_id]->Flush());
}

arrow::Status ShuffleWriter::Flush() {
  AllocationWaitCancel wait_cancel(&cancelled_);
  ARROW_RETURN_NOT_OK(CheckWritable());
  for (auto& buffer : buffers_) ARROW_RETURN_NOT_OK(Fail(buffer->Flush()));
  return arrow::Status::OK();
}

arrow::Status ShuffleWriter::FlushIfDue() {
  AllocationWaitCancel wait_cancel(&cancelled_);
  ARROW_RETURN_NOT_OK(CheckWritable());
  if (descriptor_->options.buffer_timeout.count() == 0) return arrow::Status::OK();
  auto now = PartitionBuffer::Clock::now();
  for (auto& buffer : buffers_) ARROW_RETURN_NOT_OK(Fail(buffer->FlushIfDue(now)));
  return arrow::Status::OK();
}

arrow::Status ShuffleWriter::WriteEvent(std::shared_ptr<arrow::Buffer> payload) {
  AllocationWaitCancel wait_cancel(&cancelled_);
  ARROW_RETURN_NOT_OK(CheckWritable());
  ShuffleErrorContext where{.shuffle_id = descriptor_->shuffle_id, .writer_task = writer_task_};
  // Checked before anything is flushed: a refused event changes nothing.
  auto made = MakeEventBlock(std::move(payload));
  if (!made.ok()) return WithShuffleContext(made.status(), where);
  for (auto& buffer : buffers_) ARROW_RETURN_NOT_OK(Fail(buffer->Flush()));
  for (PartitionId p = 0; p < static_cast<PartitionId>(outputs_.size()); ++p) {
    ARROW_RETURN_NOT_OK(Fail(SendBlock(p, *made)));
  }
  stats_.events += 1;
  return arrow::Status::OK();
}

arrow::Status ShuffleWriter::Finish() {
  AllocationWaitCancel wait_cancel(&cancelled_);
  ARROW_RETURN_NOT_OK(CheckWritable());
  if (non_blocking_) {
    return WithShuffleContext(
        arrow::Status::Invalid("a non-blocking writer finishes with TryFinish(), not Finish()"),
        {.shuffle_id = descriptor_->shuffle_id, .writer_task = writer_task_});
  }
  for (auto& buffer : buffers_) ARROW_RETURN_NOT_OK(Fail(buffer->Finish()));
  for (PartitionId p = 0; p < static_cast<PartitionId>(outputs_.size()); ++p) {
    ARROW_RETURN_NOT_OK(Fail(WithShuffleContext(
        outputs_[p]->Finish(), {.shuffle_id = descriptor_->shuffle_id, .partition_id = p,
                                .writer_task = writer_task_})));
  }
  finished_ = true;
  return arrow::Status::OK();
}

arrow::Result<bool> ShuffleWriter::TryFinish() {
  if (!non_blocking_) {
    ARROW_RETURN_NOT_OK(Finish());
    return true;
  }
  AllocationWaitCancel wait_cancel(&cancelled_);
  if (!finishing_) {
    ARROW_RETURN_NOT_OK(CheckWritable());
    for (auto& buffer : buffers_) ARROW_RETURN_NOT_OK(Fail(buffer->Finish()));
    finishing_ = true;
  } else if (!error_.ok()) {
    return error_;
  } else if (finished_) {
    return CheckWritable();
  }
  ARROW_RETURN_NOT_OK(Drain());
  if (has_pending()) return false;
  for (PartitionId p = 0; p < static_cast<PartitionId>(outputs_.size()); ++p) {
    ARROW_RETURN_NOT_OK(Fail(WithShuffleContext(
        outputs_[p]->Finish(), {.shuffle_id = descriptor_->shuffle_id, .partition_id = p,
                                .writer_task = writer_task_})));
  }
  finished_ = true;
  return true;
}

}  // namespace sabot
