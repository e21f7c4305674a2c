#pragma once

// One task of a local job: one subtask of one chain of the execution graph, run in
// non-blocking steps on the job's TaskScheduler. It owns the task's operator instances (a source
// reader and/or a chain of operators handing batches on by function calls), the shuffle readers
// of the chain's input edges and the shuffle writers of its output edges.
//
// A step: drain what the writers could not send yet; if nothing is left pending, take up to a
// few input items (source batches, or batches and events from the readers), push each through
// the chain, and stop as soon as an output cannot take more (backpressure) or no input has
// anything (the reader or writer wakes the task). At the end of input: the chain's watermark
// goes to the end of time, every operator finishes (sinks commit), an end-of-input event goes to
// every output, and the writers finish once their outboxes drained.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/record_batch.h>
#include <arrow/status.h>

#include "sabot/dataflow/input_watermarks.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/operator.h"
#include "sabot/dataflow/stream_event.h"
#include "sabot/dataflow/task_scheduler.h"

namespace sabot {

class ShuffleManager;
class ShuffleReader;
class LocalJob;
struct JobCheckpointing;
struct OperatorCounters;

class TaskRunner {
 public:
  using Clock = std::chrono::steady_clock;

  TaskRunner(LocalJob* job, int32_t chain, TaskIndex subtask);
  ~TaskRunner();

  // Makes the operator instances, opens the readers and writers; `handle` is how readers and
  // writers wake this task. Errors name the task.
  arrow::Status Open(TaskScheduler::TaskHandle handle);
  // One step (the scheduler's step function). Never blocks.
  StepResult Step();
  // From any thread: ends the task's reads and writes that wait, so its next step sees the
  // job's failure promptly.
  void CancelIo(const arrow::Status& cause);
  // After every task of the job finished: commits the task's operators of commit phase `phase`
  // (CommitPhaseOf). The executor commits phase 0 of every task, then phase 1, then 2, so what
  // may fail (checks, then renames) happens before what cannot (collect sinks publishing their
  // rows): a job whose commit fails publishes nothing in memory. From the executor's thread,
  // once the scheduler is idle.
  arrow::Status Commit(int phase);
  static constexpr int kCommitPhases = 4;
  // 0: verify sinks (checks); 1: every operator's PrepareCommit (file sinks remove an earlier
  // run's parts: every task, on every agent, before any renames); 2: file sinks and aggregates
  // (a window's late output: renames); 3: every other operator.
  static int CommitPhaseOf(OperatorKind kind);
  // The job failed: aborts the task's operators (sinks remove their temporary files), readers and
  // writers. Idempotent. From the task's step or, once the scheduler is idle, the executor.
  void Abort(const arrow::Status& cause) { AbortAll(cause); }

  // "task 2 of 'map'" (the chain's head operator names the chain).
  std::string Describe() const;
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  // True when this task's own error failed the job (not a consequence of another's).
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Rows into the chain's head (from its readers; a source chain: the source's rows) and rows out
  // of its last operator (to its writers; a sink: rows it took in). From any thread.
  int64_t rows_in() const { return rows_in_.load(std::memory_order_relaxed); }
  int64_t rows_out() const { return rows_out_.load(std::memory_order_relaxed); }
  // Time the task was held back by its shuffle writers (blocks pending for credit, network
  // segments or admission): its writers' backpressure. From any thread.
  std::chrono::nanoseconds output_blocked() const {
    return std::chrono::nanoseconds(output_blocked_ns_.load(std::memory_order_relaxed));
  }
  // Rows this task received from writer i of its input shuffle `input` (reader stats), for the
  // job's N x M matrices; index by the position of the shuffle in the graph's InputShuffles.
  std::vector<std::vector<int64_t>> InputRowsPerWriter() const;
  // The same in bytes of those rows (ShuffleReaderStats::bytes_per_input).
  std::vector<std::vector<int64_t>> InputBytesPerWriter() const;
  const std::vector<size_t>& input_edges() const { return input_edges_; }

  // Checkpoints (docs/fault-tolerance.md; only when the job has a JobCheckpointing). A task
  // with a source injects the barrier of the newest triggered checkpoint at its next step,
  // after snapshotting its source and chain; a task with inputs aligns the barrier over its
  // input channels (pausing each channel that delivered it until every channel delivered it
  // or ended), snapshots its chain and forwards it. Each snapshot is written off the task's
  // thread and reported through JobCheckpointing::Report.
  //
  // True once the task's chain finished (its end of input went out) or it was restored as
  // finished: it takes no more snapshots. From any thread.
  bool ended() const { return ended_.load(std::memory_order_acquire); }
  // For an ended task: acks the newest triggered checkpoint as finished (a TaskSnapshot with
  // `finished` and no files) unless this task acked it already; a task whose chain ends in a
  // sink fails it instead (its output is in no snapshot). From any thread.
  void AckEnded();

 private:
  class Link;
  struct Input {
    size_t edge = 0;          // index into graph.edges()
    int32_t operator_input = 0;
    std::unique_ptr<ShuffleReader> reader;
    size_t first_channel = 0;  // its writers' channels in watermarks_
    bool ended = false;
  };
  struct Output {
    std::string shuffle_id;
    bool forward = false;  // writer i writes partition i
    bool finished = false;
  };
  // An output item not yet taken by every writer: a batch or an event, and the next output it
  // goes to.
  struct Held {
    std::shared_ptr<arrow::RecordBatch> batch;
    std::shared_ptr<arrow::Buffer> event;
    size_t next_output = 0;
  };

  // `status` located in operator `id`: "operator 'name' (kind) task k: <doing><message>",
  // unless it names an operator already.
  arrow::Status InOperator(OperatorId id, const arrow::Status& status,
                           std::string_view doing = "") const;
  // The step's work; an error fails the job.
  arrow::Status RunStep(StepResult* result);
  // Sends held items to the writers in order; false while something remains pending.
  arrow::Result<bool> FlushOutputs();
  arrow::Status ReadInputs(int* items);
  arrow::Status FinishInput();
  // Delivers `batch` / a watermark to operator `index` of the chain (ops_.size(): the outputs).
  arrow::Status Deliver(size_t index, int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch);
  arrow::Status DeliverWatermark(size_t index, WatermarkMs watermark);
  arrow::Status EmitToOutputs(Held item);
  void AbortAll(const arrow::Status& cause);
  // Calls OnTimer of the operators whose timer is due; lowers `*next` to the earliest timer
  // still pending (Operator::NextTimer).
  arrow::Status RunTimers(std::optional<Clock::time_point>* next);
  // Marks the input channels silent for the idle timeout idle (InputWatermarks::SetIdle);
  // lowers `*next` to when the next one would turn idle. No-op without an idle timeout.
  arrow::Status CheckIdleChannels(std::optional<Clock::time_point>* next);
  // Channel `channel` delivered an item at `now`.
  void ChannelActive(size_t channel, Clock::time_point now);
  // Adds what operator `index`'s late-row count grew by to its counters.
  void CountLateRows(size_t index);
  // Checkpoints: restores the chain from the job's restore point (Open); snapshots the source
  // and chain for checkpoint `id`, hands the files to the storage and sends the barrier to the
  // outputs; injects a newly triggered barrier (source tasks); handles a barrier from channel
  // `channel` (input `input`'s reader input `reader_input`); completes an alignment once every
  // channel delivered the barrier or ended; tells the operators of a completed checkpoint.
  arrow::Status RestoreChain();
  arrow::Status TakeSnapshot(CheckpointId id);
  arrow::Status InjectBarrier();
  arrow::Status OnBarrier(Input& input, size_t reader_input, size_t channel, CheckpointId id);
  arrow::Status CheckAligned();
  arrow::Status ResumeAlignedInputs();
  arrow::Status NotifyCheckpointComplete();
  // `result` (kIdle) woken at `next` too, when set.
  static StepResult IdleOr(StepResult result, const std::optional<Clock::time_point>& next);

  LocalJob* const job_;
  const int32_t chain_;
  const TaskIndex subtask_;
  TaskScheduler::TaskHandle handle_ = -1;

  std::unique_ptr<SourceReader> source_;
  OperatorId source_id_ = -1;
  std::vector<std::unique_ptr<Operator>> ops_;
  std::vector<OperatorId> op_ids_;
  std::vector<std::unique_ptr<Link>> links_;  // links_[i]: the output of ops_[i]
  std::vector<size_t> input_edges_;
  std::vector<Input> inputs_;
  size_t next_input_ = 0;  // round robin over inputs_
  InputWatermarks watermarks_{0};
  // Idle inputs (PlanOptions::idle_timeout; 0: off): when each channel last delivered an item
  // (moved forward by the time the task was held back by its outputs, when it read nothing),
  // and since when the task is held back.
  std::chrono::milliseconds idle_timeout_{0};
  std::vector<Clock::time_point> channel_active_;
  std::optional<Clock::time_point> blocked_since_;
  // Per operator of the chain: its late_rows() already added to the counters.
  std::vector<int64_t> late_counted_;
  std::vector<Output> outputs_;
  std::deque<Held> held_;
  // The largest batch the writers take at once (their admission); 0: no outputs.
  int64_t max_slice_bytes_ = 0;
  WatermarkMs last_watermark_sent_ = kNoWatermark;
  WatermarkMs chain_watermark_ = kNoWatermark;  // what the chain's head last saw
  // Time spent in operators below the one being timed (see Deliver).
  int64_t nested_ns_ = 0;

  bool input_done_ = false;      // the source or every reader ended
  bool chain_finished_ = false;  // operators finished, end-of-input queued
  bool aborted_ = false;
  std::atomic<bool> finished_{false};
  std::atomic<bool> failed_{false};
  std::atomic<int64_t> rows_in_{0};
  std::atomic<int64_t> rows_out_{0};
  std::atomic<int64_t> output_blocked_ns_{0};
  // Checkpoints (null when off: nothing below is used and no step pays for it).
  JobCheckpointing* checkpointing_ = nullptr;
  std::atomic<CheckpointId> acked_{kNoCheckpoint};  // the newest checkpoint this task acked
  std::atomic<bool> ended_{false};
  CheckpointId injected_ = kNoCheckpoint;   // the newest barrier a source task injected
  CheckpointId notified_ = kNoCheckpoint;   // the newest completion told to the operators
  CheckpointId aligning_ = kNoCheckpoint;   // the barrier being aligned (0: none)
  CheckpointId last_aligned_ = kNoCheckpoint;
  std::vector<bool> barrier_seen_;          // per channel: delivered the barrier being aligned
  bool restored_ended_ = false;             // restored as finished: runs to its end at once
  // The chain position whose deliveries count as the task's rows out: ops_.size() (its outputs),
  // or the last operator when it is a sink.
  size_t out_index_ = 0;
};

}  // namespace sabot
