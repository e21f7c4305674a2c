#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "sabot/common/thread_annotations.h"

namespace sabot {

// Runs a callback when a deadline passes, on one background thread: it bounds waits that take no
// timeout themselves, such as a Flight stream's Next(), by cancelling them.
//
// Arm() registers a deadline and returns its id; Disarm() removes it and reports whether it had
// already fired. A callback runs at most once, never under the watchdog's lock, and Disarm()
// waits until a callback that is running for its id has returned, so the callback may safely
// use what the caller owns until Disarm() returns.
//
// Thread safety: safe for concurrent use. Callbacks must be quick and must not call Disarm().
class DeadlineWatchdog {
 public:
  using Clock = std::chrono::steady_clock;
  using Id = uint64_t;

  // The process-wide watchdog (its thread starts on first use and lives until exit).
  static DeadlineWatchdog& Global();

  DeadlineWatchdog();
  ~DeadlineWatchdog();
  DeadlineWatchdog(const DeadlineWatchdog&) = delete;
  DeadlineWatchdog& operator=(const DeadlineWatchdog&) = delete;

  Id Arm(Clock::time_point deadline, std::function<void()> on_expiry) SABOT_EXCLUDES(mutex_);
  // True when the callback ran (or is running: then this waits for it to return).
  bool Disarm(Id id) SABOT_EXCLUDES(mutex_);

 private:
  struct Entry {
    Clock::time_point deadline;
    std::function<void()> on_expiry;
  };
  void Loop();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<Id, Entry> entries_ SABOT_GUARDED_BY(mutex_);
  Id next_id_ SABOT_GUARDED_BY(mutex_) = 1;
  Id firing_ SABOT_GUARDED_BY(mutex_) = 0;  // the id whose callback is running, or 0
  bool stopping_ SABOT_GUARDED_BY(mutex_) = false;
  // When the watchdog thread sleeps: the deadline it waits for (max() without one); min() while
  // it runs (it looks at every entry before it sleeps again). Arm() wakes it only for an earlier
  // deadline: readers arm one per message, almost always later than the earliest, and a wake-up
  // each would cost a context switch per block.
  Clock::time_point sleeping_until_ SABOT_GUARDED_BY(mutex_) = Clock::time_point::min();
  std::thread thread_;
};

}  // namespace sabot
