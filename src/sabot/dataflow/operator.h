#pragma once

// The runtime form of the plan's operators: what one task of an operator does with the batches
// and watermarks it receives. The executor (local_executor.h) chains operator instances in a
// task and connects tasks by shuffles; the operators themselves know neither threads nor
// shuffles. Everything is vectorized: an operator is called once per batch, never per row.
//
// Binding (operator_binding.h) checks an operator's parameters against its input schemas before
// any task runs (unknown columns, expression types, files that do not exist) and gives its output
// schema and a factory of task instances.

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/dataflow/checkpoint.h"
#include "sabot/dataflow/logical_plan.h"

namespace sabot {

// Event time is milliseconds since the Unix epoch. A watermark W promises that no later row has
// an event time below W. kEndOfTimeWatermark is the watermark of an input that ended: everything
// it will ever send was sent.
using WatermarkMs = int64_t;
inline constexpr WatermarkMs kNoWatermark = std::numeric_limits<int64_t>::min();
inline constexpr WatermarkMs kEndOfTimeWatermark = std::numeric_limits<int64_t>::max();

// Which task of which operator an instance is, and the resources of its task.
struct TaskContext {
  std::string job_id;
  const OperatorSpec* spec = nullptr;  // outlives the instance
  int32_t subtask = 0;                 // 0 .. parallelism - 1
  int32_t parallelism = 1;
  // Where the operator allocates its output. The local executor gives the default pool: only the
  // shuffles' memory is under the job's budget today.
  arrow::MemoryPool* pool = arrow::default_memory_pool();
  // A stateful operator's state (an aggregate's groups): the bytes one task's state may hold
  // before it spills to disk (0: no limit), and the directory it spills under (empty: the
  // system's temporary directory).
  int64_t state_budget_bytes = 0;
  std::string spill_directory;
};

// Where an operator's output goes: the next operator of its chain, or the task's shuffle writers
// or sink. Emit() may be called any number of times per input batch (a filter may emit nothing).
class OperatorOutput {
 public:
  virtual ~OperatorOutput() = default;
  virtual arrow::Status Emit(const std::shared_ptr<arrow::RecordBatch>& batch) = 0;
  // Forwards the operator's watermark downstream; watermarks must not go backwards.
  virtual arrow::Status EmitWatermark(WatermarkMs watermark) = 0;
};

// One task's instance of a non-source operator (map, filter, project, sinks; the stateful
// operators of later issues). Called from one thread at a time, in this order: Process /
// OnWatermark any number of times, then Finish once every input ended, then Commit once every
// task of the job finished (the job succeeded) — or Abort, at any point, when the job fails
// (after which nothing else is called). Output is therefore committed for the whole job or not
// at all: a file sink writes a temporary file until Finish closes it, Commit renames it to its
// final name, and Abort removes it.
class Operator {
 public:
  virtual ~Operator() = default;
  // A batch arriving on input `input` (0, or for a join 0 = left / 1 = right).
  virtual arrow::Status Process(int32_t input, const std::shared_ptr<arrow::RecordBatch>& batch,
                                OperatorOutput* out) = 0;
  // The task's watermark advanced to `watermark` (the minimum over its inputs). The default
  // passes it on; a stateful operator fires what it completes first.
  virtual arrow::Status OnWatermark(WatermarkMs watermark, OperatorOutput* out) {
    return out->EmitWatermark(watermark);
  }
  // Every input ended: emit what remains; a file sink completes and closes its temporary file.
  virtual arrow::Status Finish(OperatorOutput* out) { return arrow::Status::OK(); }
  // Every task of the job finished, before any task's Commit (in a distributed job: on every
  // agent before any agent commits): clear what the commit replaces (a file sink removes an
  // earlier run's part files). May fail; changes nothing the job's own output needs.
  virtual arrow::Status PrepareCommit() { return arrow::Status::OK(); }
  // Every task of the job finished: make the output visible (a file sink renames its file).
  virtual arrow::Status Commit() { return arrow::Status::OK(); }
  // The job failed or was cancelled: drop state; a file sink removes its temporary file.
  virtual void Abort() {}
  // Rows handed to Process and rows emitted, for the job's summary.
  virtual int64_t rows_in() const = 0;
  virtual int64_t rows_out() const = 0;
  // Bytes of state the instance wrote to disk because it outgrew its state budget
  // (TaskContext::state_budget_bytes), for the job's summary; read after Finish.
  virtual int64_t state_spilled_bytes() const { return 0; }

  // Rows that arrived too late for their event-time window (windowed_aggregate.h), for the job's
  // summary; 0 for every other operator.
  virtual int64_t late_rows() const { return 0; }

  // Checkpoints (checkpoint.h). Snapshot: the barrier of checkpoint `id` reached this operator
  // (everything before it was processed, nothing after it): put what a restart needs into
  // `state` (a stateless operator puts nothing). Restore: before the first Process of a
  // restarted task, the snapshot this instance's predecessor put into the checkpoint the job
  // restarts from (every part it put; Get gives nullptr for none). CheckpointComplete:
  // checkpoint `id` is durable for the whole job; an exactly-once sink publishes the output it
  // wrote before that barrier. Notifications come in increasing order and may skip ids (only
  // the latest complete one is told). All three on the task's thread, between Process calls.
  virtual arrow::Status Snapshot(CheckpointId id, StateWriter* state) {
    return arrow::Status::OK();
  }
  virtual arrow::Status Restore(CheckpointId id, StateReader* state) {
    return arrow::Status::OK();
  }
  virtual arrow::Status CheckpointComplete(CheckpointId id) { return arrow::Status::OK(); }

  // Timers, for operators that act on the wall clock (processing-time windows). After every
  // step of its task (a batch, a watermark, a timer) the task asks NextTimer(); at or after that
  // time it calls OnTimer (between Process calls, on the same thread), even when no input
  // arrives. nullopt: no timer. The task calls OnTimer at most once per NextTimer() value it
  // read; early calls are allowed (the operator checks the clock itself).
  virtual std::optional<std::chrono::steady_clock::time_point> NextTimer() const {
    return std::nullopt;
  }
  virtual arrow::Status OnTimer(OperatorOutput* out) { return arrow::Status::OK(); }
};

// One task of a source: yields its share of the source's rows (its files and row groups, or its
// share of the generated rows), with watermarks when the source has an event-time column.
// Called from one thread at a time.
class SourceReader {
 public:
  struct Step {
    enum class Kind {
      kBatch,      // `batch` is the next batch
      kWatermark,  // `watermark` (the largest event time seen minus the bounded lateness)
      kWait,       // nothing now (a rate limit): call again at `ready_at`
      kEnd,        // no more rows; the executor then sends kEndOfTimeWatermark itself
    };
    Kind kind = Kind::kEnd;
    std::shared_ptr<arrow::RecordBatch> batch;
    WatermarkMs watermark = kNoWatermark;
    std::chrono::steady_clock::time_point ready_at;
  };

  virtual ~SourceReader() = default;
  // The next step. Never blocks for long: at most one batch is read or generated per call.
  virtual arrow::Result<Step> Next() = 0;
  // The job failed or was cancelled; release files.
  virtual void Abort() {}
  // Checkpoints (checkpoint.h): Snapshot puts the reader's position (what it produced so far:
  // files, row groups and batches read; generated rows) into `state`, between two Next calls;
  // Restore, before the first Next of a restarted task, rewinds to the position of a snapshot,
  // so the next batches are exactly the ones that followed it. A source that cannot rewind
  // keeps these defaults: NotImplemented (the job then cannot checkpoint; the error names the
  // source's operator).
  virtual arrow::Status Snapshot(CheckpointId id, StateWriter* state) {
    return arrow::Status::NotImplemented("this source cannot rewind to a checkpoint");
  }
  virtual arrow::Status Restore(CheckpointId id, StateReader* state) {
    return arrow::Status::NotImplemented("this source cannot rewind to a checkpoint");
  }
  virtual int64_t rows_out() const = 0;
};

}  // namespace sabot
