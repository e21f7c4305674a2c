#pragma once

// Checkpoints: the vocabulary every layer of fault tolerance shares (docs/fault-tolerance.md).
//
// A streaming job's checkpoint `id` is a consistent cut of the job: every source task puts a
// barrier of `id` into its output between two batches and snapshots its position; a task with
// several input channels aligns them (holds each channel whose barrier arrived, under credits,
// until every channel delivered it or ended), then every operator of its chain snapshots its
// state and the barrier goes on to every output. Once every task of the job has written its
// snapshot durably, the checkpoint is complete: its manifest is committed (checkpoint_storage.h)
// and every task hears CheckpointComplete(id), on which exactly-once sinks publish the output up
// to that barrier. After a failure the job restarts from the latest complete checkpoint whose
// files verify: every operator restores its snapshot, sources rewind to their positions, and
// the rows after the cut are produced again (sinks discard what they wrote after it).
//
// An operator's snapshot is a set of named Arrow tables, written as Arrow IPC files. The
// operator hands them over on its task's thread (Operator::Snapshot); the files are written off
// that thread, so a snapshot stalls the task only for the copy of the state's in-memory part.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/table.h>

namespace sabot {

// A job run's checkpoints are numbered 1, 2, 3, ... in trigger order; 0: none.
using CheckpointId = int64_t;
inline constexpr CheckpointId kNoCheckpoint = 0;

// A job's checkpointing and restart settings: PlanOptions::checkpoint (logical_plan.h), in the
// job file under `options: checkpoint:` (docs/fault-tolerance.md).
struct CheckpointOptions {
  // Time between two checkpoint triggers; 0 (the default): no checkpoints, a failure fails the
  // job as before.
  std::chrono::milliseconds interval{0};
  // Where checkpoints are written: a local directory or an Arrow filesystem URI
  // (file:///..., s3://...). Required when `interval` is set.
  std::string directory;
  // Complete checkpoints kept; older ones are deleted once a newer one completes. >= 1.
  int32_t retained = 2;
  // Restart strategy after a task failure or a lost agent: at most `max_restarts` restarts per
  // job run (0: fail at the first failure), the k-th (from 0) after
  // min(restart_delay * restart_backoff^k, max_restart_delay).
  int32_t max_restarts = 3;
  std::chrono::milliseconds restart_delay{500};
  double restart_backoff = 2.0;
  std::chrono::milliseconds max_restart_delay{std::chrono::seconds(30)};

  bool enabled() const { return interval.count() > 0; }
  bool operator==(const CheckpointOptions&) const = default;
};

// Where an operator instance puts its snapshot.
class StateWriter {
 public:
  virtual ~StateWriter() = default;
  // Adds the part `name` (letters, digits and '_'; unique within this operator's snapshot) of
  // the snapshot. The table is written to disk after the call returns, off the task's thread, so
  // its buffers must not change afterwards: hand over arrays the state never mutates in place,
  // or a copy. An empty table is a valid part.
  virtual arrow::Status Put(const std::string& name, std::shared_ptr<arrow::Table> table) = 0;
};

// Where a restarted operator instance reads the snapshot it restores.
class StateReader {
 public:
  virtual ~StateReader() = default;
  // The part `name` of the snapshot, or nullptr when the snapshot has no such part (an operator
  // that put nothing). Errors name the checkpoint, the task and the file (a checksum mismatch is
  // caught before, when the checkpoint is chosen).
  virtual arrow::Result<std::shared_ptr<arrow::Table>> Get(const std::string& name) = 0;
};

}  // namespace sabot
