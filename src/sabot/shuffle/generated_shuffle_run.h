#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <map>
#include <vector>

#include <arrow/result.h>

#include "sabot/shuffle/generated_shuffle_check.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

// Live counters of a running shuffle job, readable from another thread (progress display).
struct ShuffleProgress {
  std::atomic<int64_t> rows_written{0};
  std::atomic<int64_t> rows_read{0};
  std::atomic<int32_t> writers_finished{0};
  std::atomic<int32_t> readers_finished{0};
};

// Ends the runs of one shuffle early, from any thread, and lets their tasks end each other.
//
// The first cause given to Cancel (a task's failure, or the job manager's cancellation)
// becomes the runs' error, and every task subscribed then or later is told at once: a reader
// cancels (even while it waits for a writer that will never write), a writer's wait for credit
// ends (even while its reader never came). Neither waits for its channel timeout. Cancelled
// once, cancelled for good.
//
// An agent shares one between the two runs of a shuffle it hosts (its writer tasks and its
// reader tasks arrive as separate calls), so a failure of one ends the other.
// Thread safety: safe for concurrent use.
class ShuffleRunCancellation {
 public:
  using Subscriber = std::function<void(const arrow::Status& cause)>;

  // Records `cause` (the first non-OK one wins) and calls every subscriber with it.
  void Cancel(const arrow::Status& cause);
  bool cancelled() const;
  // OK until cancelled, then the first cause.
  arrow::Status cause() const;

  // Calls `on_cancel` when cancelled (at once when already); the id to Unsubscribe with, which
  // must come before whatever `on_cancel` touches goes away. `on_cancel` runs under this
  // object's lock: it must not call back into it, nor block.
  int64_t Subscribe(Subscriber on_cancel);
  void Unsubscribe(int64_t id);

 private:
  mutable std::mutex mutex_;
  arrow::Status cause_;
  int64_t next_id_ = 0;
  std::map<int64_t, Subscriber> subscribers_;
};

// What one run of a generated shuffle did.
struct ShuffleRunReport {
  int64_t rows_written = 0;
  int64_t bytes_written = 0;  // generated batch bytes handed to the writers
  std::vector<int64_t> partition_rows;  // rows each reader received
  std::chrono::nanoseconds elapsed{0};
};

// Runs the writer tasks and reader tasks of `job`'s shuffle `shuffle_id` (registered with
// `manager`, which must hold writer tasks [writers_begin, writers_end) and reader partitions
// `partitions`), each task on its own thread, and checks every batch a reader receives with
// `check`. Pipelined shuffles run writers and readers together; blocking ones run the readers
// after every writer finished. `upstream` says where each writer ran (empty: all here).
//
// The first failure of any task is returned, naming the task; it cancels `cancellation` (the
// run's own when null), which stops the other tasks at once (readers waiting for data, writers
// waiting for credit; their streams aborted), so a failure never leaves the run waiting for a
// timeout.
// Cancelling `cancellation` from another thread ends the run the same way, with its cause.
arrow::Result<ShuffleRunReport> RunGeneratedShuffle(
    ShuffleManager* manager, const ShuffleId& shuffle_id, const GeneratedJob& job,
    std::vector<TaskIndex> writers, std::vector<PartitionId> partitions,
    std::vector<WriterLocation> upstream, GeneratedShuffleCheck* check,
    ShuffleProgress* progress = nullptr, ShuffleRunCancellation* cancellation = nullptr);

}  // namespace sabot
