#pragma once

// The state the tasks of one local job share (local_executor.cc makes it; task_runner.cc uses
// it): the bound job, the shuffle manager, the scheduler, per-operator counters and the job's
// first failure.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <arrow/status.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/dataflow/checkpoint_storage.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/operator.h"
#include "sabot/dataflow/task_scheduler.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

class ShuffleManager;
class TaskRunner;

// Counters of one operator, summed over its tasks; written by task threads, read by anyone.
struct OperatorCounters {
  explicit OperatorCounters(int32_t tasks)
      : tasks(tasks), watermarks(std::make_unique<std::atomic<int64_t>[]>(tasks)) {
    for (int32_t t = 0; t < tasks; ++t) watermarks[t] = kNoWatermark;
  }
  std::atomic<int64_t> rows_in{0};
  std::atomic<int64_t> rows_out{0};
  std::atomic<int64_t> busy_ns{0};
  // Rows too late for their event-time window (Operator::late_rows), summed over the tasks.
  std::atomic<int64_t> late_rows{0};
  std::atomic<int64_t> state_spilled_bytes{0};  // Operator::state_spilled_bytes, summed
  // The last watermark each task's instance saw (OperatorReport::watermark is their minimum).
  const int32_t tasks;
  std::unique_ptr<std::atomic<int64_t>[]> watermarks;
};

// What every task's TaskContext says of operator state (LocalExecutorOptions).
struct TaskStateLimits {
  int64_t budget_bytes = 0;
  std::string spill_directory;
};

// Thread safety: every method may be called from any thread.
// The checkpointing state a task group's tasks share (TaskGroupOptions::checkpoint_storage);
// absent when checkpoints are off. `triggered` and `completed` are set by the group (any
// thread) and read by the tasks at their steps; snapshots written on IO threads report through
// Report. Thread-safe.
struct JobCheckpointing {
  std::shared_ptr<CheckpointStorage> storage;
  std::optional<CheckpointManifest> restore_from;
  std::function<void(CheckpointId, const arrow::Result<TaskSnapshot>&)> on_task_snapshot;
  // The newest checkpoint triggered (source tasks inject its barrier) and completed (tasks
  // tell their operators).
  std::atomic<CheckpointId> triggered{kNoCheckpoint};
  std::atomic<CheckpointId> completed{kNoCheckpoint};

  // A task's snapshot of `id` is durable or failed: tells on_task_snapshot.
  void Report(CheckpointId id, const arrow::Result<TaskSnapshot>& result) {
    if (on_task_snapshot) on_task_snapshot(id, result);
  }
  // Snapshots being written (BeginWrite before a writer's Commit, EndWrite in its callback);
  // WaitWrites blocks until none is (the group's destructor: no callback outlives the group).
  void BeginWrite() {
    std::lock_guard<std::mutex> lock(mutex);
    ++writing;
  }
  void EndWrite() {
    std::lock_guard<std::mutex> lock(mutex);
    if (--writing == 0) idle.notify_all();
  }
  void WaitWrites() {
    std::unique_lock<std::mutex> lock(mutex);
    idle.wait(lock, [this] { return writing == 0; });
  }

  std::mutex mutex;
  std::condition_variable idle;
  int64_t writing SABOT_GUARDED_BY(mutex) = 0;
};

class LocalJob {
 public:
  // `writer_locations[e]`, for graph edge e (a shuffle edge), names where each of its writer
  // tasks runs (TaskGroupOptions::writer_locations); empty: every writer runs on `manager`.
  LocalJob(std::shared_ptr<const BoundJob> bound, ShuffleManager* manager,
           TaskScheduler* scheduler, TaskStateLimits state = {},
           std::vector<std::vector<std::string>> writer_locations = {});

  const TaskStateLimits& state_limits() const { return state_limits_; }
  const BoundJob& bound() const { return *bound_; }
  const LogicalPlan& plan() const { return bound_->graph.plan(); }
  ShuffleManager* manager() const { return manager_; }
  TaskScheduler* scheduler() const { return scheduler_; }
  OperatorCounters& counters(OperatorId id) { return *counters_.at(id); }
  // The upstream writers a reader task of graph edge `edge` reads (ShuffleManager::ReadPartition):
  // empty when every writer runs on this job's manager.
  std::vector<WriterLocation> UpstreamOf(size_t edge) const;

  // Tasks register so a failure can reach them all.
  void AddTask(TaskRunner* task, TaskScheduler::TaskHandle handle);
  // Records the job's first failure, ends every task's waiting reads and writes, and wakes every
  // task so each aborts promptly. Later failures (usually consequences) are ignored. True when
  // this call recorded the first failure.
  bool Fail(const arrow::Status& cause);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Wakes every task (a checkpoint was triggered or completed).
  void WakeAll();
  // Checkpointing: set once, before any task opens; null when checkpoints are off.
  void SetCheckpointing(std::shared_ptr<JobCheckpointing> checkpointing) {
    checkpointing_ = std::move(checkpointing);
  }
  JobCheckpointing* checkpointing() const { return checkpointing_.get(); }
  const std::shared_ptr<JobCheckpointing>& shared_checkpointing() const { return checkpointing_; }
  arrow::Status failure() const;

 private:
  std::shared_ptr<const BoundJob> bound_;
  ShuffleManager* const manager_;
  TaskScheduler* const scheduler_;
  const TaskStateLimits state_limits_;
  std::unordered_map<OperatorId, std::unique_ptr<OperatorCounters>> counters_;
  const std::vector<std::vector<std::string>> writer_locations_;
  std::shared_ptr<JobCheckpointing> checkpointing_;

  mutable std::mutex mutex_;
  std::vector<std::pair<TaskRunner*, TaskScheduler::TaskHandle>> tasks_ SABOT_GUARDED_BY(mutex_);
  arrow::Status failure_ SABOT_GUARDED_BY(mutex_);
  std::atomic<bool> failed_{false};
};

}  // namespace sabot
