#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  // The bytes of those rows (RowBytes::RangeBytes of each batch: the rows' data, decoded),
  // per upstream input.
  std::vector<int64_t> bytes_per_input;
};

// How a reader replaces an input whose stream failed: lineage recovery of blocking shuffles
// (docs/fault-tolerance.md, "Batch jobs: lineage recovery"). `replace` is called on the failed
// input's thread with the input's index and its error (never a cancellation) and returns a new
// input reading a newer attempt of the same writer task's stream, waiting for one to be known
// while `cancelled()` is false; or the error that ends the read (its own, or `failure`).
//
// A reader made with a recovery delivers each threaded input's stream only once it has all of
// it (the input's Run returned OK): the items are held by the reader until then. A stream that
// fails half way was therefore never delivered in part, and the new attempt's whole stream is
// read instead: every stream (writer task x partition) is delivered exactly once, from exactly
// one attempt. Costs: a remote stream's rows are held in memory (outside the memory budget)
// before delivery, and alignment (PauseInput) sees a stream's items only once it is complete.
// Polled inputs (in-process channels) are not recoverable and never replaced.
struct InputRecovery {
  std::function<arrow::Result<std::unique_ptr<BlockInput>>(
      size_t input, const arrow::Status& failure, const std::function<bool()>& cancelled)>
      replace;
  // Which inputs are recoverable (staged whole, replaced on failure); empty: every threaded
  // input. The shuffle manager marks the remote ones: a local stream cannot be lost without
  // its reader.
  std::vector<bool> inputs;
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
// Polled inputs. An input that can be read without a thread (BlockInput::pollable(): an
// in-process channel) gets none: it is always running (max_running_inputs counts threaded
// inputs only), and the consuming calls poll it themselves, round-robin over such inputs after
// the queue of the threaded ones, so a block moves from the writer's channel to the consumer
// with no thread between them. Its channel's callback wakes a waiting NextItem() and calls the
// SetOnReady() callback. A paused polled input takes at most kPausedInputQueue + 1 items from
// its channel and holds them (a threaded one queues kPausedInputQueue and holds one more on its
// thread), so that an error right behind them still ends the read at once. Polled and found
// empty for longer than its channel's timeout (BlockInput::poll_timeout()), it fails the read,
// as a threaded input's wait does; the clock runs only while the consumer polls or waits.
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
// SetOnReady(f) makes the reader call f() from its input threads (and, for polled inputs, from
// the writers' threads through their channels' callbacks) whenever TryNextItem() may return
// something it could not before (an item of an input that is not paused was queued or arrived
// in its channel, an input ended or failed; rarely also when nothing can be delivered after
// all); never under the reader's lock, possibly concurrently with the consumer. Next() (rows only) skips events and input ends.
//
// Errors: the first input to fail ends the read, paused or not: the consumer's next call
// returns its error (naming shuffle, partition, writer and agent) and the other inputs are
// cancelled. Nothing partial is reported as a complete result: kEnd (Next(): nullptr) only
// once every input ended cleanly.
//
// Recovery: with an InputRecovery (Make), a threaded input that fails is replaced by a newer
// attempt of its writer's stream instead of ending the read (see InputRecovery).
//
// Lifecycle: Make() starts the input threads; NextItem() (or Next()) until kEnd or an error;
// the destructor (or Cancel()) stops and joins them. Thread safety: the consuming calls
// (Next, NextItem, TryNextItem, ReadAll, PauseInput, ResumeInput) from one thread at a time;
// Cancel(), SetOnReady() and stats() from any thread.
class ShuffleReader {
 public:
  // `on_close`, if set, runs once when the reader is destroyed (the manager counts open readers).
  // `recovery`: see InputRecovery (none: an input's failure ends the read).
  static arrow::Result<std::unique_ptr<ShuffleReader>> Make(
      std::shared_ptr<const ShuffleDescriptor> descriptor, PartitionId partition_id,
      std::vector<std::unique_ptr<BlockInput>> inputs, int64_t max_queued_batches = 0,
      std::function<void()> on_close = nullptr, size_t max_running_inputs = 0,
      InputRecovery recovery = {});
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
  // What wakes a consumer waiting for an item: shared with the polled inputs' channel callbacks,
  // which may run after the reader is gone. Notify() bumps `count` and, when asked, calls
  // `on_ready` (outside the lock) unless closed; Close() (the destructor) waits for calls of
  // `on_ready` under way, so none runs once the reader is destroyed.
  struct Wakeup {
    std::mutex mutex;
    std::condition_variable changed;
    uint64_t count SABOT_GUARDED_BY(mutex) = 0;
    std::shared_ptr<const std::function<void()>> on_ready SABOT_GUARDED_BY(mutex);
    int calling SABOT_GUARDED_BY(mutex) = 0;  // calls of on_ready under way
    bool closed SABOT_GUARDED_BY(mutex) = false;

    void Notify(bool call_on_ready);
    void Close();
    uint64_t Count();
    // Waits until `count` differs from `seen` or `deadline` passes.
    void WaitChange(uint64_t seen, std::chrono::steady_clock::time_point deadline);
  };
  // A polled input's state; the consumer's alone (the consuming calls are serialized).
  struct PolledInput {
    size_t index = 0;
    bool ended = false;
    std::deque<StreamItem> held;  // taken while paused, delivered on resume
    std::optional<std::chrono::steady_clock::time_point> idle_since;  // polled empty since
  };

  ShuffleReader() = default;
  // A reader thread: runs the inputs not yet taken, one after another.
  void RunInputs();
  void RunInput(size_t index);
  // RunInput with a recovery: stages each stream whole, replaces a failed input.
  void RunRecoverableInput(size_t index);
  bool cancelled() const;
  // Waits for room, then queues; false when the read was cancelled.
  bool Push(Item item);
  // The next item, waiting for one when `wait`.
  arrow::Result<ShuffleReaderItem> Take(bool wait);
  // The first deliverable item of the threaded inputs' queue, or kNotReady.
  arrow::Result<ShuffleReaderItem> TakeQueued();
  // The next item of a polled input, or kNotReady; lowers `*deadline` to when an input found
  // empty times out.
  arrow::Result<ShuffleReaderItem> Poll(std::chrono::steady_clock::time_point* deadline);
  // Takes what a paused polled input may hold from its channel (arming its callback when that
  // is less); the read's error if the channel failed.
  arrow::Status FillPaused(PolledInput* polled);
  // Hands out `item` of polled input `polled` (a batch, an event or the input's end).
  ShuffleReaderItem DeliverPolled(PolledInput* polled, StreamItem item);
  // Ends the read with `status`, the first error of an input.
  arrow::Status FailRead(const arrow::Status& status);
  // The first queued item that may be delivered now, or queue_.end().
  std::deque<Item>::iterator FirstDeliverableLocked() SABOT_REQUIRES(mutex_);
  bool RoomForLocked(size_t input) const SABOT_REQUIRES(mutex_);
  void StopAndJoin();

  std::shared_ptr<const ShuffleDescriptor> descriptor_;
  PartitionId partition_id_ = 0;
  // A threaded input is replaced (recovery_) under inputs_mutex_, which Cancel() holds while it
  // cancels the inputs; the vector itself never changes size after Make().
  std::vector<std::unique_ptr<BlockInput>> inputs_;
  std::mutex inputs_mutex_;
  InputRecovery recovery_;
  std::vector<std::thread> threads_;
  size_t max_queued_ = 0;
  std::vector<size_t> threaded_;       // the inputs run on threads, in order
  std::atomic<size_t> next_input_{0};  // the next of threaded_ a reader thread takes
  std::vector<PolledInput> polled_;    // the inputs polled without a thread
  size_t poll_cursor_ = 0;             // where the next Poll() starts in polled_
  std::shared_ptr<Wakeup> wakeup_ = std::make_shared<Wakeup>();
  std::function<void()> on_close_;

  mutable std::mutex mutex_;
  std::condition_variable not_full_;
  std::deque<Item> queue_ SABOT_GUARDED_BY(mutex_);
  std::vector<InputSlot> slots_ SABOT_GUARDED_BY(mutex_);
  // Batches and events queued for inputs that are not paused (what max_queued_ bounds).
  int64_t active_queued_ SABOT_GUARDED_BY(mutex_) = 0;
  size_t inputs_open_ SABOT_GUARDED_BY(mutex_) = 0;
  bool cancelled_ SABOT_GUARDED_BY(mutex_) = false;
  arrow::Status error_ SABOT_GUARDED_BY(mutex_);
  ShuffleReaderStats stats_ SABOT_GUARDED_BY(mutex_);
};

}  // namespace sabot
