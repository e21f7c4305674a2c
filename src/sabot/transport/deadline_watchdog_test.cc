#include "sabot/transport/deadline_watchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

namespace sabot {
namespace {

using namespace std::chrono_literals;

TEST(DeadlineWatchdog, FiresOnceWhenTheDeadlinePasses) {
  DeadlineWatchdog watchdog;
  std::atomic<int> fired{0};
  auto id = watchdog.Arm(DeadlineWatchdog::Clock::now() + 20ms, [&] { fired.fetch_add(1); });
  auto deadline = DeadlineWatchdog::Clock::now() + 5s;
  while (fired.load() == 0 && DeadlineWatchdog::Clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(fired.load(), 1);
  EXPECT_TRUE(watchdog.Disarm(id));
  EXPECT_EQ(fired.load(), 1);
}

TEST(DeadlineWatchdog, DisarmedBeforeTheDeadlineNeverFires) {
  DeadlineWatchdog watchdog;
  std::atomic<int> fired{0};
  auto id = watchdog.Arm(DeadlineWatchdog::Clock::now() + 10s, [&] { fired.fetch_add(1); });
  EXPECT_FALSE(watchdog.Disarm(id));
  EXPECT_EQ(fired.load(), 0);
}

TEST(DeadlineWatchdog, EarliestFirstAmongMany) {
  DeadlineWatchdog watchdog;
  std::mutex mutex;
  std::vector<int> order;
  auto now = DeadlineWatchdog::Clock::now();
  std::vector<DeadlineWatchdog::Id> ids;
  for (int i : {3, 1, 2}) {
    ids.push_back(watchdog.Arm(now + i * 15ms, [&, i] {
      std::lock_guard<std::mutex> lock(mutex);
      order.push_back(i);
    }));
  }
  std::this_thread::sleep_for(200ms);
  for (auto id : ids) EXPECT_TRUE(watchdog.Disarm(id));
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(DeadlineWatchdog, DisarmWaitsForARunningCallback) {
  DeadlineWatchdog watchdog;
  std::atomic<bool> started{false}, finished{false};
  auto id = watchdog.Arm(DeadlineWatchdog::Clock::now(), [&] {
    started.store(true);
    std::this_thread::sleep_for(50ms);
    finished.store(true);
  });
  while (!started.load()) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(watchdog.Disarm(id));
  EXPECT_TRUE(finished.load()) << "Disarm returned while the callback was still running";
}

}  // namespace
}  // namespace sabot
