#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
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
  // writer's working set (ShuffleManager::Write). A non-blocking writer never waits; for it this
  // is the time during which blocks were pending in its outboxes (backpressure just the same).
  std::chrono::nanoseconds blocked{0};
};

// How a writer's calls behave when a reader has not granted credit (or network segments are
// used up): a blocking writer waits in the calling thread; a non-blocking one never waits.
struct WriterMode {
  // Non-blocking: a sealed block that cannot be sent now waits in its partition's outbox (see
  // ShuffleWriter, "Non-blocking mode").
  bool non_blocking = false;
  // Non-blocking only: the wake-up. Called when pending blocks may drain (a credit arrived,
  // network segments were returned) or the writer was cancelled; for a writer of a
  // ShuffleManager also when its admission may succeed. It runs on whichever thread caused
  // that (a reader consuming, another writer finishing, a Cancel), under no lock, possibly
  // concurrently with itself, possibly before the call that left the writer waiting has
  // returned, spuriously at times, and possibly shortly after the writer finished or was
  // destroyed: capture what it touches by shared ownership (or keep it alive until every
  // thread of the job is done). Keep it short (schedule the writer's task) and never call the
  // writer or the shuffle manager from it.
  std::function<void()> on_ready;
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
// Non-blocking mode (WriterMode::non_blocking, for tasks run as cooperative steps on a bounded
// pool of threads, where a writer waiting for credit would hold a thread its readers may need):
// no call waits for a reader or for network segments. A sealed block that cannot be sent now
// goes to its partition's outbox, and later blocks of that partition queue behind it, so every
// stream keeps its order. has_pending() tells whether an outbox holds blocks; Drain() sends what
// credit and segments allow now; TryFinish() seals the rest, and ends the streams once every
// outbox drained (false until then). WriterMode::on_ready is called when draining may progress.
// Contract: after a Write() or WritePartition() left blocks pending, the caller writes no more
// batches (Invalid) until has_pending() is false: an outbox then never holds more than one
// batch produced (its rows plus what the partition buffers held before), blocks that are
// budget memory already and that the writer's admission counts (ShuffleManager). Flushes and
// events may be sent while blocks are pending: they queue behind them. A store output (a
// blocking shuffle) never waits for a reader, so it never leaves blocks pending. Waits for budget
// memory (spill, BudgetedMemoryPool) are the budget's, in both modes.
//
// Thread safety: not thread-safe; one task thread drives it. In blocking mode outputs may block
// it (credit). Cancel() may come from any thread.
// Lifetime: `pool` and `metrics` (not owned) must outlive the writer.
class ShuffleWriter {
 public:
  // `encode_blocks` false keeps sealed blocks as batches (in-process channels and local
  // stores, where nothing needs bytes); true encodes each block once as Arrow IPC.
  static arrow::Result<std::unique_ptr<ShuffleWriter>> Make(
      std::shared_ptr<const ShuffleDescriptor> descriptor, TaskIndex writer_task,
      int32_t attempt, const BlockOutputFactory& open_output, bool encode_blocks,
      arrow::MemoryPool* pool, MemoryMetrics* metrics = nullptr, WriterMode mode = {});
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
  // each reader receives it in stream order. May block like a row block (blocking mode); in
  // non-blocking mode event blocks wait in the outboxes like row blocks.
  arrow::Status WriteEvent(std::shared_ptr<arrow::Buffer> payload);
  // Seals and sends everything, then ends every stream. Invalid when called twice, and in
  // non-blocking mode (use TryFinish).
  arrow::Status Finish();

  // Non-blocking mode (in blocking mode these never find anything pending):
  // Whether blocks wait in an outbox for credit or network segments.
  bool has_pending() const { return pending_blocks_ > 0; }
  int64_t pending_blocks() const { return pending_blocks_; }
  // Sends, in order, the pending blocks that credit and segments allow now; never waits.
  arrow::Status Drain();
  // Seals what the buffers hold (the first call), drains, and once nothing is pending ends
  // every stream and returns true; false while blocks are still pending (call again after
  // on_ready). In blocking mode it is Finish() and returns true. Invalid once finished.
  arrow::Result<bool> TryFinish();
  bool non_blocking() const { return non_blocking_; }
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
  // Sends `block` to its partition's output: in blocking mode waiting for it; in non-blocking
  // mode into the outbox when it cannot be sent now or older blocks wait there.
  arrow::Status SendBlock(PartitionId partition_id, SealedBlock block);
  // Non-blocking: Invalid while blocks are pending (see the contract above).
  arrow::Status CheckNothingPending() const;
  void DropPending();
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
  bool non_blocking_ = false;
  // Shared with the outputs' callbacks, which may outlive the writer briefly.
  std::shared_ptr<const std::function<void()>> on_ready_;
  // Non-blocking: per partition, sealed blocks waiting for credit or segments, in order.
  std::vector<std::deque<SealedBlock>> outboxes_;
  int64_t pending_blocks_ = 0;
  std::chrono::steady_clock::time_point pending_since_;
  // Non-blocking: TryFinish sealed the buffers and waits for the outboxes to drain.
  bool finishing_ = false;
  bool finished_ = false;
  arrow::Status error_;
  // Set by Cancel: ends the task thread's waits for budget memory (AllocationWaitCancel).
  std::atomic<bool> cancelled_{false};
};

}  // namespace sabot
