#include "sabot/dataflow/task_scheduler.h"

#include <algorithm>

namespace sabot {

void TaskWaker::Wake(int32_t task) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (scheduler_ != nullptr) scheduler_->Wake(task);
}

void TaskWaker::Detach() {
  std::lock_guard<std::mutex> lock(mutex_);
  scheduler_ = nullptr;
}

TaskScheduler::TaskScheduler(int32_t threads)
    : threads_(std::max<int32_t>(1, threads)), waker_(std::make_shared<TaskWaker>(this)) {}

TaskScheduler::~TaskScheduler() {
  waker_->Detach();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  for (auto& worker : workers_) worker.join();
}

TaskScheduler::TaskHandle TaskScheduler::Add(Step step) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto task = std::make_unique<Task>();
  task->step = std::move(step);
  tasks_.push_back(std::move(task));
  const auto handle = static_cast<TaskHandle>(tasks_.size() - 1);
  runnable_.push_back(handle);
  work_.notify_one();
  return handle;
}

void TaskScheduler::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!workers_.empty()) return;
  for (int32_t i = 0; i < threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

void TaskScheduler::Wake(TaskHandle task) {
  std::lock_guard<std::mutex> lock(mutex_);
  WakeLocked(task);
}

void TaskScheduler::WakeLocked(TaskHandle handle) {
  if (handle < 0 || static_cast<size_t>(handle) >= tasks_.size()) return;
  Task& task = *tasks_[handle];
  switch (task.state) {
    case State::kIdle:
      task.state = State::kQueued;
      runnable_.push_back(handle);
      work_.notify_one();
      break;
    case State::kRunning:
      task.state = State::kRunningWoken;
      break;
    case State::kQueued:
    case State::kRunningWoken:
    case State::kDone:
      break;
  }
}

void TaskScheduler::FireTimersLocked(TimePoint now) {
  while (!timers_.empty() && timers_.top().at <= now) {
    const TaskHandle handle = timers_.top().task;
    timers_.pop();
    WakeLocked(handle);
  }
}

void TaskScheduler::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    FireTimersLocked(std::chrono::steady_clock::now());
    if (stopping_) return;
    if (runnable_.empty()) {
      if (timers_.empty()) {
        work_.wait(lock);
      } else {
        // A copy: wait_until reads the deadline again after waking, and meanwhile (the lock is
        // released) another worker's push may move the queue's storage.
        const auto due = timers_.top().at;
        work_.wait_until(lock, due);
      }
      continue;
    }
    const TaskHandle handle = runnable_.front();
    runnable_.pop_front();
    Task* task = tasks_[handle].get();  // stable: tasks_ holds pointers
    task->state = State::kRunning;
    ++running_;
    lock.unlock();
    const StepResult result = task->step();
    lock.lock();
    --running_;
    switch (result.kind) {
      case StepResult::Kind::kDone:
        task->state = State::kDone;
        if (++done_ == static_cast<int32_t>(tasks_.size())) all_done_.notify_all();
        break;
      case StepResult::Kind::kYield:
        task->state = State::kQueued;
        runnable_.push_back(handle);
        break;
      case StepResult::Kind::kIdle:
        if (task->state == State::kRunningWoken) {
          task->state = State::kQueued;
          runnable_.push_back(handle);
        } else {
          task->state = State::kIdle;
          if (result.wake_at) {
            timers_.push({*result.wake_at, handle});
            work_.notify_one();  // a sleeping worker may need the earlier deadline
          }
        }
        break;
    }
  }
}

void TaskScheduler::Wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  all_done_.wait(lock, [&] { return done_ == static_cast<int32_t>(tasks_.size()); });
}

int32_t TaskScheduler::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_;
}

int32_t TaskScheduler::timed_waits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int32_t>(timers_.size());
}

int32_t TaskScheduler::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

int32_t TaskScheduler::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int32_t>(tasks_.size());
}

}  // namespace sabot
