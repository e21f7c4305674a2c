#pragma once

// A set of a bound job's tasks run together in this process: every task of the job (the local
// executor) or the tasks one agent of a distributed job was given. The group runs its tasks on a
// bounded pool of worker threads (TaskScheduler) against a ShuffleManager — local (in-process
// transport) or an agent's (Flight transport) — and knows where every writer task of every
// shuffle of the job runs, so its reader tasks read their upstream writers wherever they are.
//
// Lifecycle: Open() makes and opens the tasks (operator instances, shuffle readers and writers;
// the job's shuffles must be registered with the manager already) -> Start() -> the tasks run
// until all finished or the group failed (Fail(), a task's error, a stall, the cancel flag) ->
// done() -> on success Commit(0), Commit(1), ... Commit(kCommitPhases - 1), in that order (a
// distributed driver runs phase k on every agent before phase k + 1 anywhere); on failure
// Abort() (file sinks remove their temporary files). The destructor aborts a group whose last
// commit phase did not succeed, stops the worker threads and closes the tasks; it does not release the job's
// shuffles (the owner of the manager does).
//
// Thread safety: every method may be called from any thread; Commit and Abort from one thread
// at a time, once done() is true.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/dataflow/checkpoint_storage.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/job_report.h"
#include "sabot/dataflow/local_job.h"
#include "sabot/dataflow/task_scheduler.h"

namespace sabot {

class ShuffleManager;
class TaskRunner;

// One task: subtask `subtask` of chain `chain` of the job's execution graph.
struct GroupTask {
  int32_t chain = 0;
  int32_t subtask = 0;
  bool operator==(const GroupTask&) const = default;
};

struct TaskGroupOptions {
  // Worker threads running the tasks' steps; 0: the machine's cores.
  int32_t threads = 0;
  TaskStateLimits state;
  // Where every writer task of every shuffle of the job runs: writer_locations[k][w] is the
  // location ("grpc+tcp://host:port", the agent's shuffle server) of writer task w of the k-th
  // shuffle edge (ExecutionGraph::shuffle_edges() order). Empty: every writer runs in this
  // group's manager (one process). A location equal to the manager's own is read locally.
  std::vector<std::vector<std::string>> writer_locations;
  // The group fails with an IOError saying what waits when its rows and finished tasks do not
  // change for this long while none of its tasks is busy; zero disables.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(120)};
  // Set from any thread to cancel the group (Cancelled). May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Called with the group's figures every `progress_interval` while it runs, from a thread of
  // the group.
  std::function<void()> on_progress;
  std::chrono::milliseconds progress_interval{500};

  // Checkpoints (checkpoint_storage.h, docs/fault-tolerance.md). Null: checkpoints off for the
  // group (TriggerCheckpoint does nothing; no barrier costs anything per record). Every task's
  // snapshots go there; the job's edges must be pipelined (Open fails naming a blocking edge).
  std::shared_ptr<CheckpointStorage> checkpoint_storage;
  // Restore every task of the group from this complete checkpoint before it runs (each
  // operator's and source's Restore); nullopt: a fresh start.
  std::optional<CheckpointManifest> restore_from;
  // A task's ack of checkpoint `id`: its snapshot is durable (its files written), or the task
  // had ended before the barrier (a TaskSnapshot with `finished` and no files), or the
  // snapshot failed (the error names the task: a write error, or a sink task that ended).
  // Once per task of the group per triggered checkpoint (unless the group fails first, or a
  // newer checkpoint was triggered before the task took this one: trigger one at a time), from a
  // thread of the group, an IO thread or TriggerCheckpoint's caller; never under the group's
  // locks. The checkpoint is complete when every task of the job acked it without error.
  std::function<void(CheckpointId, const arrow::Result<TaskSnapshot>&)> on_task_snapshot;
};

// The state of one task of the group.
struct GroupTaskStatus {
  GroupTask task;
  std::string name;        // Describe(): "task 2 of 'map'"
  bool finished = false;   // its step ended (done, failed or aborted)
  bool failed = false;     // it failed the group (its error is the group's failure)
  int64_t rows_in = 0;     // rows into the chain's head operator (sources: 0)
  int64_t rows_out = 0;    // rows out of the chain's last operator (sinks: rows written)
};

// What a group's tasks did so far.
struct TaskGroupFigures {
  // Per operator (plan order, key_by excluded), summed over this group's tasks of it; an
  // operator with no task here is absent. watermark: the minimum over this group's tasks.
  std::vector<OperatorReport> operators;
  std::vector<int32_t> operator_tasks;  // parallel to operators: its tasks in this group
  // Per shuffle edge of the job (graph order, chained edges excluded): rows[i][j] and
  // channel_bytes[i][j] (the bytes of those rows as received, RowBytes) filled for the reader
  // tasks j of this group (0 elsewhere); writer_blocked[i] (N entries) for the writer
  // tasks i of this group (0 elsewhere: the time task i was held back by its writers); bytes,
  // spill and blocked time of the writers that ran on this group's manager.
  std::vector<EdgeReport> edges;
  std::vector<GroupTaskStatus> tasks;
  int64_t peak_memory_bytes = 0;
  int64_t memory_budget_bytes = 0;
};

class TaskGroup {
 public:
  // Opens `tasks` of `bound` (each once, in range) on `manager`, whose lifetime must exceed the
  // group's. Errors name the task; nothing is left open on error.
  static arrow::Result<std::unique_ptr<TaskGroup>> Open(std::shared_ptr<const BoundJob> bound,
                                                        ShuffleManager* manager,
                                                        std::vector<GroupTask> tasks,
                                                        TaskGroupOptions options);
  // Every task of `bound`'s graph, in graph order.
  static std::vector<GroupTask> AllTasks(const BoundJob& bound);
  ~TaskGroup();

  // Starts the worker threads.
  void Start();
  // True once every task ended (finished, or aborted after the group failed).
  bool done() const;
  // Waits until done(); true when done, false after `timeout`.
  bool WaitFor(std::chrono::milliseconds timeout);
  void Wait();
  // The group's first failure (OK while none).
  arrow::Status failure() const { return job_->failure(); }
  // Fails the group with `cause`: every task ends its waits and aborts promptly.
  void Fail(const arrow::Status& cause) { (void)job_->Fail(cause); }
  // Commits phase `phase` (TaskRunner::CommitPhaseOf) of every task; once done() without failure.
  arrow::Status Commit(int phase);
  // Aborts every task (sinks remove their temporary files; committed file parts too). Once
  // done(); idempotent.
  void Abort(const arrow::Status& cause);

  // Checkpoints (only with TaskGroupOptions::checkpoint_storage; otherwise no-ops). From any
  // thread. TriggerCheckpoint: every source task of the group snapshots its source and chain
  // and sends the barrier of `id` at its next step (ids increase; a task that finished sends
  // none and acks nothing: a job whose sources ended cannot checkpoint any more).
  // CheckpointComplete: every task's operators hear CheckpointComplete(id) at their next step
  // (exactly-once sinks publish); ids increase, a later one supersedes an unheard earlier one.
  void TriggerCheckpoint(CheckpointId id);
  void CheckpointComplete(CheckpointId id);
  // Tasks of the group that have not finished (the acks a checkpoint triggered now awaits).
  int32_t running_tasks() const;

  TaskGroupFigures Figures() const;
  // Whether a step runs now or a task waits for a time it named (a timer, a rate limit): a
  // group that is not busy and whose rows do not move waits for something else.
  bool busy() const;
  // Changes whenever rows move or a task finishes (StallDetector's signature).
  int64_t Signature() const;
  const BoundJob& bound() const { return *bound_; }
  std::chrono::nanoseconds elapsed() const { return std::chrono::steady_clock::now() - start_; }

 private:
  TaskGroup(std::shared_ptr<const BoundJob> bound, ShuffleManager* manager,
            TaskGroupOptions options);
  // The watcher thread: cancel flag, stall detection, progress callbacks.
  void Watch();

  std::shared_ptr<const BoundJob> bound_;
  ShuffleManager* const manager_;
  TaskGroupOptions options_;
  const std::chrono::steady_clock::time_point start_;
  // Order of destruction matters: tasks go first, then the scheduler their callbacks wake, then
  // the job state they point to.
  std::unique_ptr<LocalJob> job_;
  std::unique_ptr<TaskScheduler> scheduler_;
  std::vector<GroupTask> task_ids_;
  std::vector<std::unique_ptr<TaskRunner>> tasks_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool started_ SABOT_GUARDED_BY(mutex_) = false;
  bool done_ SABOT_GUARDED_BY(mutex_) = false;
  bool stopping_ SABOT_GUARDED_BY(mutex_) = false;
  bool aborted_ = false;    // Commit/Abort's thread only
  bool committed_ = false;  // the last commit phase succeeded
  std::thread runner_;   // Start(): scheduler->Start(), Wait(), then done_
  std::thread watcher_;
};

}  // namespace sabot
