#pragma once

// The state the tasks of one local job share (local_executor.cc makes it; task_runner.cc uses
// it): the bound job, the shuffle manager, the scheduler, per-operator counters and the job's
// first failure.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <arrow/status.h>

#include "sabot/common/thread_annotations.h"
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
  arrow::Status failure() const;

 private:
  std::shared_ptr<const BoundJob> bound_;
  ShuffleManager* const manager_;
  TaskScheduler* const scheduler_;
  const TaskStateLimits state_limits_;
  std::unordered_map<OperatorId, std::unique_ptr<OperatorCounters>> counters_;
  const std::vector<std::vector<std::string>> writer_locations_;

  mutable std::mutex mutex_;
  std::vector<std::pair<TaskRunner*, TaskScheduler::TaskHandle>> tasks_ SABOT_GUARDED_BY(mutex_);
  arrow::Status failure_ SABOT_GUARDED_BY(mutex_);
  std::atomic<bool> failed_{false};
};

}  // namespace sabot
