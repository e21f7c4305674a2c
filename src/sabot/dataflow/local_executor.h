#pragma once

// The local executor: runs every task of a job's execution graph in this process, on a bounded
// pool of worker threads (not a thread per task), connected by the shuffle service in local
// mode under one memory budget.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include <arrow/result.h>

#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/job_report.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/dataflow/operator_binding.h"

namespace sabot {

struct LocalExecutorOptions {
  std::string job_id = "job";
  // Worker threads running task steps; 0: the machine's cores.
  int32_t threads = 0;
  // The memory budget of every shuffle of the job (ShuffleManagerOptions::memory_budget).
  int64_t memory_budget = 256LL * 1024 * 1024;
  // Applied to every shuffle edge (compression, block size, credits, timeout); the mode is the
  // plan's shuffle_mode.
  ShuffleOptions shuffle;
  // Where blocking shuffles and operator state spill; empty: the system's temporary directory.
  std::string spill_directory;
  // The bytes one task of a stateful operator (an aggregate) may hold in state before it spills
  // under `spill_directory` (TaskContext::state_budget_bytes); 0: no limit.
  int64_t state_budget_per_task = 0;
  // Called every `progress_interval` from a thread of the executor while the job runs.
  std::function<void(const JobProgress&)> on_progress;
  std::chrono::milliseconds progress_interval{500};
  // Console sinks print here (null: std::cout); collect sinks fill `collected` (null: refused).
  std::ostream* console = nullptr;
  std::shared_ptr<CollectedOutput> collected;
  // The in-memory tables table sources read (null: table sources are refused).
  std::shared_ptr<const ProvidedTables> tables;
  // A job whose rows and finished tasks do not change for this long fails with an IOError that
  // says what waits (a stall: e.g. writers waiting for memory admission), instead of hanging;
  // zero disables. Jobs with unbounded rate-limited sources move rows all the time.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(120)};
  // Set (from any thread) to stop the job: RunLocalJob then returns Cancelled and file sinks
  // remove their temporary files. An unbounded source runs until this is set. May be null.
  const std::atomic<bool>* cancel = nullptr;
};

// Runs `plan` to the end of its (bounded) sources and returns what it did. Binding errors come
// first, before any task runs, naming the operator. A failed task fails the job promptly: every
// other task is cancelled, file sinks remove their temporary files (nothing partial appears
// under a final name) and the first error is returned, naming the operator and task.
//
// With checkpoints on (`plan.options().checkpoint`, docs/fault-tolerance.md) the executor
// triggers a checkpoint every interval (one in flight at a time), commits it once every task
// acked, and tells the tasks; a failed task then makes the job restart — every task, on a fresh
// shuffle manager, restored from the latest valid checkpoint of this run (or from the start
// when there is none) — after min(restart_delay * restart_backoff^k, max_restart_delay), at
// most max_restarts times; then the job fails with the last cause and every earlier attempt's.
// Failures a restart cannot cure (the group refuses to open; NotImplemented) are not retried.
// Every attempt runs the same BoundJob. JobReport::checkpoints has the run's figures.
arrow::Result<JobReport> RunLocalJob(const LogicalPlan& plan, const LocalExecutorOptions& options);

// The same for a job bound already (BindJob with `options`' job id, console, collected and
// tables): a caller that must tell a bad job (binding errors) from a failed run binds first.
arrow::Result<JobReport> RunBoundJob(std::shared_ptr<const BoundJob> bound,
                                     const LocalExecutorOptions& options);

// The BindOptions RunLocalJob binds with.
BindOptions BindOptionsOf(const LocalExecutorOptions& options);

}  // namespace sabot
