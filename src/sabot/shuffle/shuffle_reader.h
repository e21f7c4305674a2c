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
  int64_t events = 0;
  std::vector<int64_t> rows_per_input;  // rows received from each upstream input, in order
};

// One thing a ShuffleReader delivers (NextItem, TryNextItem).
struct ShuffleReaderItem {
  enum class Kind {
    kBatch,       // `batch` came from input `input`
    kEvent,       // `event` (opaque bytes a writer sent with ShuffleWriter::WriteEvent) came
                  // from input `input`, after that input's earlier batches and events
    kInputEnded,  // input `input` ended cleanly: nothing more comes from it
    kEnd,         // every input ended cleanly: the read is complete
    kNotReady,    // TryNextItem only: nothing can be delivered right now
  };
  Kind kind = Kind::kNotReady;
  size_t input = 0;  // kBatch, kEvent, kInputEnded
  std::shared_ptr<arrow::RecordBatch> batch;  // kBatch
  std::shared_ptr<arrow::Buffer> event;       // kEvent
};

// The read side of one shuffle for one reader task: the batches and events of partition
// `partition_id` from every upstream writer, until every writer's stream has ended.
//
// Inputs. The reader has one input per upstream stream, numbered 0..num_inputs()-1 in the
// order of the `inputs` given to Make(); ShuffleManager::ReadPartition makes input i read the
// stream of upstream[i] (by default writer task i, attempt 0), so an input index names the
// upstream writer task. Every item says which input it came from. Order is kept per input (the
// writer's stream order: its batches and events exactly as written), not across inputs.
//
// Up to `max_running_inputs` upstream inputs (0: all of them) run at once, each on a thread of
// the reader, and hand their items, in order, to a queue; items of inputs that are not paused
// count against `max_queued_batches` (0: twice the inputs running, at least 4). NextItem()
// takes them in arrival order. A pipelined read runs every input at once, so a writer blocked on
// one channel never waits for the reader to finish with another writer first; a blocking read
// (writers do not wait for it) runs a few, so that what it holds (a block read back per running
// input and the queue) stays small whatever the number of writers.
//
// Alignment (watermarks, barriers). PauseInput(i) stops delivering input i's items: they stay
// queued, in order, and once at least one item of input i is queued its thread stops taking
// from its channel, so the channel's credits are not returned and input i's writer blocks for
// credit (per-channel backpressure), while the other inputs keep flowing. ResumeInput(i)
// delivers them again, in order. A reader aligning a barrier pauses each input at the barrier
// event it delivered and resumes all once every input delivered it (or ended). This needs every
// input running: with max_running_inputs below the number of inputs, an input not started yet
// never delivers its barrier while the running ones are paused.
//
// Consumption. NextItem() blocks; TryNextItem() never does and says kNotReady instead.
// SetOnReady(f) makes the reader call f() from its input threads whenever TryNextItem() may
// return something it could not before (an item of an input that is not paused was queued, an
// input ended or failed); never under the reader's lock, possibly concurrently with the
// consumer. Next() (rows only) skips events and input ends.
//
// Errors: the first input to fail ends the read, paused or not: the consumer's next call
// returns its error (naming shuffle, partition, writer and agent) and the other inputs are
// cancelled. Nothing partial is reported as a complete result: kEnd (Next(): nullptr) only
// once every input ended cleanly.
//
// Lifecycle: Make() starts the input threads; NextItem() (or Next()) until kEnd or an error;
// the destructor (or Cancel()) stops and joins them. Thread safety: the consuming calls
// (Next, NextItem, TryNextItem, ReadAll, PauseInput, ResumeInput) from one thread at a time;
// Cancel(), SetOnReady() and stats() from any thread.
class ShuffleReader {
 public:
  // `on_close`, if set, runs once when the reader is destroyed (the manager counts open readers).
  static arrow::Result<std::unique_ptr<ShuffleReader>> Make(
      std::shared_ptr<const ShuffleDescriptor> descriptor, PartitionId partition_id,
      std::vector<std::unique_ptr<BlockInput>> inputs, int64_t max_queued_batches = 0,
      std::function<void()> on_close = nullptr, size_t max_running_inputs = 0);
  ~ShuffleReader();

  // The next batch (events and input ends skipped), nullptr after the last one, or the first
  // error.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Next();
  // Every remaining batch.
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadAll();
  // The next item (kBatch, kEvent, kInputEnded, or kEnd once every input ended), waiting for
  // one; or the first error. Never kNotReady.
  arrow::Result<ShuffleReaderItem> NextItem();
  // As NextItem() without waiting: kNotReady when nothing can be delivered now (every queued
  // item belongs to a paused input, or nothing is queued).
  arrow::Result<ShuffleReaderItem> TryNextItem();
  // See the class comment. `on_ready` replaces the previous callback (null: none); it may run
  // on several input threads at once and must not call the consuming methods itself unless it
  // serializes them with the consumer. It must stay callable until the reader is destroyed (the
  // destructor joins the input threads) or replaced: a call already started when it is
  // replaced finishes with the old one. Items queued before it was set do not trigger it: call
  // TryNextItem() after setting it. ResumeInput() does not trigger it either: the consumer that
  // resumes knows to call TryNextItem().
  void SetOnReady(std::function<void()> on_ready);
  // Stops (PauseInput) or restarts (ResumeInput) delivering input `input`'s items. Invalid for
  // an index out of range. Pausing an input that ended has no effect but to hold back its end.
  arrow::Status PauseInput(size_t input);
  arrow::Status ResumeInput(size_t input);
  bool input_paused(size_t input) const;
  size_t num_inputs() const { return inputs_.size(); }
  // Stops every input; NextItem() then returns Cancelled.
  void Cancel();

  const std::shared_ptr<arrow::Schema>& schema() const { return descriptor_->schema; }
  PartitionId partition_id() const { return partition_id_; }
  ShuffleReaderStats stats() const;

  // Items a paused input may have queued before its thread stops taking from its channel.
  static constexpr int64_t kPausedInputQueue = 1;

 private:
  struct Item {
    size_t input = 0;
    StreamItem item;   // a batch or an event; neither: the input ended with `status`
    arrow::Status status;
    bool is_end() const { return item.is_end(); }
  };
  struct InputSlot {
    int64_t queued = 0;  // batches and events of this input in the queue
    bool paused = false;
  };

  ShuffleReader() = default;
  // A reader thread: runs the inputs not yet taken, one after another.
  void RunInputs();
  void RunInput(size_t index);
  // Waits for room, then queues; false when the read was cancelled.
  bool Push(Item item);
  // The next item, waiting for one when `wait`.
  arrow::Result<ShuffleReaderItem> Take(bool wait);
  // The first queued item that may be delivered now, or queue_.end().
  std::deque<Item>::iterator FirstDeliverableLocked() SABOT_REQUIRES(mutex_);
  bool RoomForLocked(size_t input) const SABOT_REQUIRES(mutex_);
  void StopAndJoin();

  std::shared_ptr<const ShuffleDescriptor> descriptor_;
  PartitionId partition_id_ = 0;
  std::vector<std::unique_ptr<BlockInput>> inputs_;
  std::vector<std::thread> threads_;
  size_t max_queued_ = 0;
  std::atomic<size_t> next_input_{0};  // the next input a reader thread takes
  std::function<void()> on_close_;

  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Item> queue_ SABOT_GUARDED_BY(mutex_);
  std::vector<InputSlot> slots_ SABOT_GUARDED_BY(mutex_);
  // Batches and events queued for inputs that are not paused (what max_queued_ bounds).
  int64_t active_queued_ SABOT_GUARDED_BY(mutex_) = 0;
  size_t inputs_open_ SABOT_GUARDED_BY(mutex_) = 0;
  std::shared_ptr<const std::function<void()>> on_ready_ SABOT_GUARDED_BY(mutex_);
  bool cancelled_ SABOT_GUARDED_BY(mutex_) = false;
  arrow::Status error_ SABOT_GUARDED_BY(mutex_);
  ShuffleReaderStats stats_ SABOT_GUARDED_BY(mutex_);
};

}  // namespace sabot
