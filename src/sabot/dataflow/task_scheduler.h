#pragma once

// A bounded pool of worker threads that runs cooperative tasks in steps. The local executor runs
// every task of a job on it: ten map tasks and five aggregate tasks share two threads, because no
// step ever blocks — a task with nothing to do returns kIdle and is woken (Wake) by whatever it
// waits for (a shuffle reader with data, a writer with credit), or at a time it names (a rate
// limit).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include "sabot/common/thread_annotations.h"

namespace sabot {

// What a step reports.
struct StepResult {
  enum class Kind {
    kYield,  // did work and has more: run again (after the other runnable tasks)
    kIdle,   // nothing to do until Wake(), or until `wake_at` when set
    kDone,   // finished (or failed; the task keeps its own outcome): never run again
  };
  Kind kind = Kind::kYield;
  std::optional<std::chrono::steady_clock::time_point> wake_at;

  static StepResult Yield() { return {Kind::kYield, std::nullopt}; }
  static StepResult Idle() { return {Kind::kIdle, std::nullopt}; }
  static StepResult IdleUntil(std::chrono::steady_clock::time_point at) { return {Kind::kIdle, at}; }
  static StepResult Done() { return {Kind::kDone, std::nullopt}; }
};

class TaskScheduler;

// Wakes the tasks of a scheduler while it lives, and does nothing after: for callbacks that may
// run after the scheduler is gone (a shuffle reader's or writer's wake-up, which may come late).
// Thread-safe.
class TaskWaker {
 public:
  explicit TaskWaker(TaskScheduler* scheduler) : scheduler_(scheduler) {}
  void Wake(int32_t task);
  // From now on Wake does nothing; waits for a Wake in progress.
  void Detach();

 private:
  std::mutex mutex_;
  TaskScheduler* scheduler_ SABOT_GUARDED_BY(mutex_);
};

// Runs tasks given as step functions on `threads` workers.
//
// A task runs on one worker at a time, so its step needs no lock against itself. Wake(task)
// makes an idle task runnable; a wake that arrives while the task runs is not lost: the task runs
// again after that step (unless it returned kDone). Tasks run in FIFO order of becoming runnable.
//
// Lifecycle: Add() tasks (before or after Start()), Start(), then Wait() until every task is
// done. The destructor stops the workers (a step in progress completes; no new step starts).
// Thread safety: every method may be called from any thread, including from inside a step.
class TaskScheduler {
 public:
  using Step = std::function<StepResult()>;
  using TaskHandle = int32_t;

  explicit TaskScheduler(int32_t threads);
  ~TaskScheduler();
  TaskScheduler(const TaskScheduler&) = delete;
  TaskScheduler& operator=(const TaskScheduler&) = delete;

  // Adds a runnable task; `step` lives until the scheduler is destroyed.
  TaskHandle Add(Step step);
  void Start();
  // Makes `task` run again soon if it is idle; a no-op for a done task.
  void Wake(TaskHandle task);
  // Waits until every task added is done.
  void Wait();
  // Steps running right now (a long step is progress, not a stall).
  int32_t running() const;
  // Tasks idle until a time they named (a rate-limited source waiting is not a stall).
  int32_t timed_waits() const;
  // Tasks done so far, and added.
  int32_t done() const;
  int32_t size() const;
  int32_t threads() const { return threads_; }
  // A waker of this scheduler's tasks that callbacks may keep: it stops waking when the
  // scheduler is destroyed.
  const std::shared_ptr<TaskWaker>& waker() const { return waker_; }

 private:
  enum class State { kIdle, kQueued, kRunning, kRunningWoken, kDone };
  struct Task {
    Step step;
    State state = State::kQueued;
  };
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Timer {
    TimePoint at;
    TaskHandle task;
    bool operator>(const Timer& other) const { return at > other.at; }
  };

  void WorkerLoop();
  // Moves due timers' tasks to the run queue.
  void FireTimersLocked(TimePoint now) SABOT_REQUIRES(mutex_);
  void WakeLocked(TaskHandle task) SABOT_REQUIRES(mutex_);

  const int32_t threads_;
  mutable std::mutex mutex_;
  std::condition_variable work_;      // a task became runnable, a timer was added, or stop
  std::condition_variable all_done_;
  std::deque<std::unique_ptr<Task>> tasks_ SABOT_GUARDED_BY(mutex_);
  std::deque<TaskHandle> runnable_ SABOT_GUARDED_BY(mutex_);
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_ SABOT_GUARDED_BY(mutex_);
  int32_t done_ SABOT_GUARDED_BY(mutex_) = 0;
  int32_t running_ SABOT_GUARDED_BY(mutex_) = 0;
  bool stopping_ SABOT_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> workers_;
  std::shared_ptr<TaskWaker> waker_;
};

}  // namespace sabot
