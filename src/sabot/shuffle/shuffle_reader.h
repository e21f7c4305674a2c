#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/shuffle/block_input.h"
#include "sabot/shuffle/shuffle_descriptor.h"

namespace sabot {

struct ShuffleReaderStats {
  int64_t rows = 0;
  int64_t batches = 0;
  std::vector<int64_t> rows_per_input;  // rows received from each upstream input, in order
};

// The read side of one shuffle for one reader task: the batches of partition `partition_id`
// from every upstream writer, until every writer's stream has ended.
//
// Up to `max_running_inputs` upstream inputs (0: all of them) run at once, each on a thread of
// the reader, and hand their batches, in order, to a queue bounded to `max_queued_batches` (0:
// twice the inputs running, at least 4); Next() takes them in arrival order. Order is therefore
// kept per upstream writer (what the shuffle guarantees), not across writers. A pipelined read
// runs every input at once, so a writer blocked on one channel never waits for the reader to
// finish with another writer first; a blocking read (writers do not wait for it) runs a few, so
// that what it holds (a block read back per running input and the queue) stays small whatever
// the number of writers.
//
// Errors: the first input to fail ends the read: Next() returns its error (naming shuffle,
// partition, writer and agent) and the other inputs are cancelled. Nothing partial is reported as
// a complete result: Next() returns nullptr only once every input ended cleanly.
//
// Lifecycle: Make() starts the input threads; Next() until nullptr or an error; the destructor
// (or Cancel()) stops and joins them. Thread safety: Next() from one thread at a time; Cancel()
// and stats() from any thread.
class ShuffleReader {
 public:
  // `on_close`, if set, runs once when the reader is destroyed (the manager counts open readers).
  static arrow::Result<std::unique_ptr<ShuffleReader>> Make(
      std::shared_ptr<const ShuffleDescriptor> descriptor, PartitionId partition_id,
      std::vector<std::unique_ptr<BlockInput>> inputs, int64_t max_queued_batches = 0,
      std::function<void()> on_close = nullptr, size_t max_running_inputs = 0);
  ~ShuffleReader();

  // The next batch, nullptr after the last one, or the first error.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Next();
  // Every remaining batch.
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadAll();
  // Stops every input; Next() then returns Cancelled.
  void Cancel();

  const std::shared_ptr<arrow::Schema>& schema() const { return descriptor_->schema; }
  PartitionId partition_id() const { return partition_id_; }
  ShuffleReaderStats stats() const;

 private:
  struct Item {
    size_t input = 0;
    std::shared_ptr<arrow::RecordBatch> batch;  // null: the input ended with `status`
    arrow::Status status;
  };

  ShuffleReader() = default;
  // A reader thread: runs the inputs not yet taken, one after another.
  void RunInputs();
  void RunInput(size_t index);
  // Waits for room, then queues; false when the read was cancelled.
  bool Push(Item item);
  void StopAndJoin();

  std::shared_ptr<const ShuffleDescriptor> descriptor_;
  PartitionId partition_id_ = 0;
  std::vector<std::unique_ptr<BlockInput>> inputs_;
  std::vector<std::thread> threads_;
  size_t max_queued_ = 0;
  std::atomic<size_t> next_input_{0};  // the next input a reader thread takes
  size_t inputs_open_ = 0;  // touched by Next() only
  std::function<void()> on_close_;

  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Item> queue_ SABOT_GUARDED_BY(mutex_);
  bool cancelled_ SABOT_GUARDED_BY(mutex_) = false;
  arrow::Status error_ SABOT_GUARDED_BY(mutex_);
  ShuffleReaderStats stats_ SABOT_GUARDED_BY(mutex_);
};

}  // namespace sabot
