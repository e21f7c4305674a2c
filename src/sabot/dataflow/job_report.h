#pragma once

// What a job did, for people: per operator rows and time, per shuffle edge the N x M row matrix,
// skew, spill and time blocked. The local executor fills a JobProgress while the job runs (for a
// progress line) and a JobReport when it ends (for the summary).

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sabot/dataflow/checkpoint.h"
#include "sabot/dataflow/logical_plan.h"

namespace sabot {

struct OperatorReport {
  OperatorId id = 0;
  std::string name;
  OperatorKind kind = OperatorKind::kMap;
  int32_t parallelism = 1;
  int64_t rows_in = 0;   // sources: 0
  int64_t rows_out = 0;  // sinks: rows written
  // Time the operator's tasks spent in it (processing, not waiting), summed over its tasks.
  std::chrono::nanoseconds busy{0};
  // Bytes of operator state its tasks spilled to disk (an aggregate over its state budget).
  int64_t state_spilled_bytes = 0;
  // The operator's event-time watermark: the minimum over its tasks of the last watermark each
  // task's operator saw (a source: emitted), in ms since the epoch; INT64_MIN before every task
  // saw one, INT64_MAX once every task's input ended.
  int64_t watermark = std::numeric_limits<int64_t>::min();
  // Rows that arrived too late for their event-time window (a windowed aggregate: counted, and
  // written to the window's late output when it has one); 0 for every other operator.
  int64_t late_rows = 0;
};

struct EdgeReport {
  std::string shuffle_id;      // "" for a chained edge
  std::string from;            // operator names
  std::string to;
  std::string type;            // "hash", "rebalance", "broadcast", "range", "forward"
  bool chained = false;
  int32_t num_writers = 1;     // N
  int32_t num_partitions = 1;  // M
  // rows[i][j]: rows writer task i sent to partition j (N x M); empty for a chained edge.
  std::vector<std::vector<int64_t>> rows;
  int64_t bytes = 0;           // block bytes sent
  int64_t bytes_spilled = 0;
  int64_t blocks_spilled = 0;
  // Writers' time waiting for credit or admission (backpressure), summed over writers.
  std::chrono::nanoseconds blocked{0};
  // Per channel and per writer, where the runner knows them (the distributed runtime's live
  // view; empty otherwise): channel_bytes[i][j], block bytes writer task i sent to partition j;
  // writer_blocked[i], writer task i's time waiting for credit or admission.
  std::vector<std::vector<int64_t>> channel_bytes;
  std::vector<std::chrono::nanoseconds> writer_blocked;

  int64_t total_rows() const;
  // Largest partition's rows over the mean partition's (1.0 = even; 0 when no rows).
  double skew() const;
};

// What checkpoints did in a job run with checkpoints on (docs/fault-tolerance.md); all zero
// when they are off.
struct CheckpointReport {
  int64_t completed = 0;  // checkpoints committed (their manifests written)
  int64_t failed = 0;     // checkpoints given up (a snapshot write failed, a task failed first)
  CheckpointId last_id = kNoCheckpoint;        // the newest committed
  std::chrono::nanoseconds last_duration{0};   // its trigger to its manifest's commit
  int64_t last_bytes = 0;                      // its files' bytes
  int32_t restarts = 0;                        // restarts after task failures
  CheckpointId restored_from = kNoCheckpoint;  // the last restart's checkpoint (0: from scratch)
};

struct JobReport {
  std::string job_id;
  std::chrono::nanoseconds wall{0};
  std::vector<OperatorReport> operators;  // plan order, key_by excluded
  std::vector<EdgeReport> edges;          // execution graph order
  int64_t peak_memory_bytes = 0;          // the budget pool's peak
  int64_t memory_budget_bytes = 0;
  // Checkpoints and restarts over the whole run (operators and edges: its last attempt).
  CheckpointReport checkpoints;
};

// A snapshot while the job runs, taken at any moment from another thread than the tasks'.
struct JobProgress {
  std::chrono::nanoseconds elapsed{0};
  std::vector<OperatorReport> operators;  // rows so far
  // Per shuffle edge (execution graph order, chained edges excluded): time blocked so far.
  std::vector<EdgeReport> edges;
  int32_t tasks_running = 0;
  int32_t tasks_finished = 0;
  int32_t tasks_total = 0;
};

}  // namespace sabot
