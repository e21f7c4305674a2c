#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>

#include "sabot/memory/partition_buffer.h"
#include "sabot/partition/partitioner.h"
#include "sabot/shuffle/block_output.h"
#include "sabot/shuffle/shuffle_descriptor.h"

namespace sabot {

class BudgetedMemoryPool;
class MemoryMetrics;

// What one writer task has done so far.
struct ShuffleWriterStats {
  int64_t rows = 0;            // rows accepted
  int64_t batches = 0;         // batches accepted (Write or WritePartition)
  int64_t blocks = 0;          // blocks sealed and sent or stored (events included)
  int64_t events = 0;          // WriteEvent calls that reached every partition
  int64_t block_bytes = 0;     // bytes of those blocks (encoded, or buffer bytes if unencoded)
  std::vector<int64_t> partition_rows;   // rows per destination partition
  std::vector<int64_t> partition_bytes;  // block bytes per destination partition
  // Time spent waiting for credit (backpressure) and for the manager's admission of the
  // writer's working set (ShuffleManager::Write).
  std::chrono::nanoseconds blocked{0};
};

// The write side of one shuffle for one writer task (attempt): partitions its batches (or takes
// already partitioned ones), buffers and seals them per destination partition, and sends each
// sealed block to that partition's BlockOutput (a pipelined channel or the block store).
//
// Lifecycle: Make() opens one output per partition; Write()/WritePartition()/Flush*() any number
// of times; then Finish() (every buffered row sealed and sent, every stream ended: nothing is
// left unsent) or Abort(). After an error every further call returns that error; destroying an
// unfinished writer aborts its streams, so readers learn that it failed instead of waiting.
//
// Thread safety: not thread-safe; one task thread drives it. Outputs may block it (credit).
// Cancel() may come from any thread.
// Lifetime: `pool` and `metrics` (not owned) must outlive the writer.
class ShuffleWriter {
 public:
  // `encode_blocks` false keeps sealed blocks as batches (in-process channels and local
  // stores, where nothing needs bytes); true encodes each block once as Arrow IPC.
  static arrow::Result<std::unique_ptr<ShuffleWriter>> Make(
      std::shared_ptr<const ShuffleDescriptor> descriptor, TaskIndex writer_task,
      int32_t attempt, const BlockOutputFactory& open_output, bool encode_blocks,
      arrow::MemoryPool* pool, MemoryMetrics* metrics = nullptr);
  ~ShuffleWriter();

  // Partitions `batch` by the shuffle's spec and buffers each part.
  arrow::Status Write(const std::shared_ptr<arrow::RecordBatch>& batch);
  // Buffers `batch`, all of whose rows belong to `partition_id` (the caller partitioned it).
  arrow::Status WritePartition(PartitionId partition_id,
                               const std::shared_ptr<arrow::RecordBatch>& batch);
  // Seals and sends what `partition_id` (or every partition) has buffered.
  arrow::Status FlushPartition(PartitionId partition_id);
  arrow::Status Flush();
  // Seals the partitions whose oldest buffered row waited past the buffer timeout.
  arrow::Status FlushIfDue();
  // Sends the event `payload` (opaque bytes, at most kMaxEventBytes; Invalid beyond, and for a
  // null payload) to every partition's stream, after the rows written before it: first every
  // partition's buffered rows are sealed and sent (as FlushPartition), then the event goes to
  // partition 0, 1, ... in turn, each as one block through the same path as row blocks (credit
  // and network segments on a pipelined channel, the block store on a blocking shuffle), so
  // each reader receives it in stream order. May block like a row block.
  arrow::Status WriteEvent(std::shared_ptr<arrow::Buffer> payload);
  // Seals and sends everything, then ends every stream. Invalid when called twice.
  arrow::Status Finish();
  // Ends every stream with `cause`; the readers receive it.
  void Abort(const arrow::Status& cause);
  // From any thread: the task thread's pending and later writes fail with `cause` (a wait for
  // credit ends at once, and so does a wait for budget memory); the task thread then aborts the
  // writer as after any failed call.
  void Cancel(const arrow::Status& cause);

  const ShuffleDescriptor& descriptor() const { return *descriptor_; }
  TaskIndex writer_task() const { return writer_task_; }
  bool finished() const { return finished_; }
  const ShuffleWriterStats& stats() const { return stats_; }
  // Set by Cancel (from any thread); lets waits outside the writer (admission) end with it.
  const std::atomic<bool>* cancelled_flag() const { return &cancelled_; }
  // Counts `waited` (for admission, by the task thread driving the writer) in stats().blocked.
  void RecordAdmissionWait(std::chrono::nanoseconds waited) { stats_.blocked += waited; }

 private:
  ShuffleWriter() = default;
  arrow::Status CheckWritable() const;
  // Records `status` as the writer's failure (aborting the streams) when it is an error.
  arrow::Status Fail(arrow::Status status);
  arrow::Status SendBlock(PartitionId partition_id, SealedBlock block);
  // `part` of `batch`; or, when the part is the caller's batch itself and the blocks stay
  // batches in the block store (blocking, local), a copy of it in the budget, made once per
  // caller batch (`*copy` caches it); or, under memory pressure, a copy of a small part (below).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Budgeted(
      const std::shared_ptr<arrow::RecordBatch>& part,
      const std::shared_ptr<arrow::RecordBatch>& batch,
      std::shared_ptr<arrow::RecordBatch>* copy);

  std::shared_ptr<const ShuffleDescriptor> descriptor_;
  TaskIndex writer_task_ = 0;
  std::unique_ptr<Partitioner> partitioner_;
  std::vector<std::unique_ptr<BlockOutput>> outputs_;
  std::vector<std::unique_ptr<PartitionBuffer>> buffers_;
  arrow::MemoryPool* pool_ = nullptr;
  BudgetedMemoryPool* budget_ = nullptr;  // `pool_` when it is a budget
  // A part with fewer rows than its batch's / this is "small" (see Budgeted).
  static constexpr int64_t kSmallPartDivisor = 2;
  // Blocking with unencoded blocks: the store keeps the batches themselves, so they must be
  // budget memory, never the caller's (which the budget does not count and spill cannot free).
  bool copy_caller_batches_ = false;
  ShuffleWriterStats stats_;
  bool finished_ = false;
  arrow::Status error_;
  // Set by Cancel: ends the task thread's waits for budget memory (AllocationWaitCancel).
  std::atomic<bool> cancelled_{false};
};

}  // namespace sabot
