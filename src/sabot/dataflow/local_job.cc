#include "sabot/dataflow/local_job.h"

#include "sabot/dataflow/task_runner.h"

namespace sabot {

LocalJob::LocalJob(std::shared_ptr<const BoundJob> bound, ShuffleManager* manager,
                   TaskScheduler* scheduler, TaskStateLimits state,
                   std::vector<std::vector<std::string>> writer_locations)
    : bound_(std::move(bound)),
      manager_(manager),
      scheduler_(scheduler),
      state_limits_(std::move(state)),
      writer_locations_(std::move(writer_locations)) {
  for (const OperatorSpec& spec : bound_->graph.plan().operators()) {
    counters_.emplace(spec.id, std::make_unique<OperatorCounters>(spec.parallelism));
  }
}

std::vector<WriterLocation> LocalJob::UpstreamOf(size_t edge) const {
  std::vector<WriterLocation> upstream;
  if (edge >= writer_locations_.size()) return upstream;
  const auto& agents = writer_locations_[edge];
  for (size_t w = 0; w < agents.size(); ++w) {
    upstream.push_back(WriterLocation{static_cast<TaskIndex>(w), 0, agents[w]});
  }
  return upstream;
}

void LocalJob::AddTask(TaskRunner* task, TaskScheduler::TaskHandle handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  tasks_.emplace_back(task, handle);
}

void LocalJob::WakeAll() {
  std::vector<std::pair<TaskRunner*, TaskScheduler::TaskHandle>> tasks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks = tasks_;
  }
  for (auto& [task, handle] : tasks) scheduler_->Wake(handle);
}

bool LocalJob::Fail(const arrow::Status& cause) {
  std::vector<std::pair<TaskRunner*, TaskScheduler::TaskHandle>> tasks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_.ok()) return false;
    failure_ = cause.ok() ? arrow::Status::UnknownError("job failed") : cause;
    failed_.store(true, std::memory_order_release);
    tasks = tasks_;
  }
  // Outside the lock: cancelling calls into readers and writers, and waking into the scheduler.
  for (auto& [task, handle] : tasks) task->CancelIo(cause);
  for (auto& [task, handle] : tasks) scheduler_->Wake(handle);
  return true;
}

arrow::Status LocalJob::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

}  // namespace sabot
