#include "sabot/dataflow/task_scheduler.h"
#include "sabot/dataflow/stall_detector.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace sabot {
namespace {

// A one-slot hand-over between a producer task and a consumer task, each woken by the other.
struct Slot {
  std::mutex mutex;
  std::deque<int64_t> values;  // at most 1
  bool closed = false;
};

TEST(TaskSchedulerTest, ManyDependentTasksOnTwoThreadsFinish) {
  // 10 producers and 5 consumers (each reading two producers) on 2 threads: a producer waits for
  // room, a consumer for values. With a thread per task this is trivial; on 2 threads it works
  // only if no step blocks and no wake is lost.
  constexpr int kProducers = 10;
  constexpr int kConsumers = 5;
  constexpr int64_t kValues = 2000;
  TaskScheduler scheduler(2);
  std::vector<Slot> slots(kProducers);
  std::vector<TaskScheduler::TaskHandle> producer(kProducers), consumer(kConsumers);
  std::vector<int64_t> next(kProducers, 0);
  std::vector<int64_t> sums(kConsumers, 0);
  std::mutex threads_mutex;
  std::set<std::thread::id> threads_seen;
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  auto enter = [&] {
    const int now = ++running;
    int seen = max_running.load();
    while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
    }
    std::lock_guard<std::mutex> lock(threads_mutex);
    threads_seen.insert(std::this_thread::get_id());
  };
  for (int p = 0; p < kProducers; ++p) {
    producer[p] = scheduler.Add([&, p]() -> StepResult {
      enter();
      Slot& slot = slots[p];
      StepResult result;
      {
        std::lock_guard<std::mutex> lock(slot.mutex);
        if (next[p] == kValues) {
          slot.closed = true;
          result = StepResult::Done();
        } else if (!slot.values.empty()) {
          result = StepResult::Idle();
        } else {
          slot.values.push_back(next[p]++);
          result = StepResult::Yield();
        }
      }
      scheduler.Wake(consumer[p / 2]);
      --running;
      return result;
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    consumer[c] = scheduler.Add([&, c]() -> StepResult {
      enter();
      bool progressed = false;
      bool all_closed = true;
      for (int p = 2 * c; p < 2 * c + 2; ++p) {
        Slot& slot = slots[p];
        std::lock_guard<std::mutex> lock(slot.mutex);
        if (!slot.values.empty()) {
          sums[c] += slot.values.front();
          slot.values.pop_front();
          progressed = true;
          scheduler.Wake(producer[p]);
        }
        all_closed = all_closed && slot.closed && slot.values.empty();
      }
      --running;
      if (all_closed) return StepResult::Done();
      return progressed ? StepResult::Yield() : StepResult::Idle();
    });
  }
  scheduler.Start();
  scheduler.Wait();
  EXPECT_EQ(scheduler.done(), kProducers + kConsumers);
  for (int c = 0; c < kConsumers; ++c) EXPECT_EQ(sums[c], 2 * (kValues * (kValues - 1) / 2));
  EXPECT_LE(max_running.load(), 2);
  EXPECT_LE(threads_seen.size(), 2u);
}

TEST(TaskSchedulerTest, AWakeDuringAStepIsNotLost) {
  TaskScheduler scheduler(1);
  std::atomic<int> steps{0};
  TaskScheduler::TaskHandle handle = -1;
  std::atomic<bool> handle_set{false};
  handle = scheduler.Add([&]() -> StepResult {
    const int step = ++steps;
    if (step == 1) {
      // Woken while running, then reports idle: it must run again.
      while (!handle_set.load()) std::this_thread::yield();
      scheduler.Wake(handle);
      return StepResult::Idle();
    }
    return StepResult::Done();
  });
  handle_set = true;
  scheduler.Start();
  scheduler.Wait();
  EXPECT_EQ(steps.load(), 2);
}

TEST(TaskSchedulerTest, AnIdleTaskWithATimeRunsAgainAtThatTime) {
  TaskScheduler scheduler(2);
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point second_step;
  int steps = 0;
  scheduler.Add([&]() -> StepResult {
    if (++steps == 1) return StepResult::IdleUntil(start + std::chrono::milliseconds(30));
    second_step = std::chrono::steady_clock::now();
    return StepResult::Done();
  });
  scheduler.Start();
  scheduler.Wait();
  EXPECT_EQ(steps, 2);
  EXPECT_GE(second_step - start, std::chrono::milliseconds(30));
}

TEST(TaskSchedulerTest, AnIdleTaskWithoutWakeStaysIdleAndDestructionStopsWorkers) {
  std::atomic<int> steps{0};
  {
    TaskScheduler scheduler(2);
    scheduler.Add([&] {
      ++steps;
      return StepResult::Idle();
    });
    scheduler.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(scheduler.done(), 0);
  }
  EXPECT_EQ(steps.load(), 1);
}

TEST(TaskSchedulerTest, WakingADoneTaskDoesNothing) {
  TaskScheduler scheduler(1);
  std::atomic<int> steps{0};
  auto handle = scheduler.Add([&] {
    ++steps;
    return StepResult::Done();
  });
  scheduler.Start();
  scheduler.Wait();
  scheduler.Wake(handle);
  scheduler.Wake(12345);  // unknown: ignored
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(steps.load(), 1);
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(TaskWakerTest, AWakerKeptPastItsSchedulerDoesNothing) {
  std::shared_ptr<TaskWaker> waker;
  std::atomic<int> steps{0};
  {
    TaskScheduler scheduler(1);
    waker = scheduler.waker();
    auto handle = scheduler.Add([&] {
      ++steps;
      return steps.load() == 1 ? StepResult::Idle() : StepResult::Done();
    });
    scheduler.Start();
    while (steps.load() == 0) std::this_thread::yield();
    waker->Wake(handle);
    scheduler.Wait();
  }
  waker->Wake(0);  // the scheduler is gone: nothing happens (and nothing crashes)
  EXPECT_EQ(steps.load(), 2);
}

}  // namespace
}  // namespace sabot

namespace sabot {
namespace {

TEST(StallDetectorTest, StalledOnlyAfterTheTimeoutWithoutChangeOrWork) {
  using std::chrono::milliseconds;
  const auto t0 = StallDetector::Clock::now();
  StallDetector stall(milliseconds(100), t0);
  EXPECT_FALSE(stall.Observe(5, false, t0));
  EXPECT_FALSE(stall.Observe(5, false, t0 + milliseconds(99)));
  EXPECT_TRUE(stall.Observe(5, false, t0 + milliseconds(100)));
  // Progress resets the clock.
  EXPECT_FALSE(stall.Observe(6, false, t0 + milliseconds(150)));
  EXPECT_FALSE(stall.Observe(6, false, t0 + milliseconds(249)));
  // Work in progress (a long step, a timed wait) is not a stall, however long.
  EXPECT_FALSE(stall.Observe(6, true, t0 + milliseconds(400)));
  EXPECT_FALSE(stall.Observe(6, false, t0 + milliseconds(499)));
  EXPECT_TRUE(stall.Observe(6, false, t0 + milliseconds(500)));
  // Disabled.
  StallDetector never(milliseconds(0), t0);
  EXPECT_FALSE(never.Observe(1, false, t0 + std::chrono::hours(1)));
}

}  // namespace
}  // namespace sabot
