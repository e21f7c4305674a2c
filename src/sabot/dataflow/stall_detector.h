#pragma once

// Tells a stalled job from a slow one: the job's progress signature (rows moved, tasks finished)
// observed now and then; a job is stalled once the signature has not changed, while nothing was
// busy (no step running, no task waiting for a time it named), for `timeout`. The local executor
// fails a stalled job with an error saying what waits instead of hanging.

#include <chrono>
#include <cstdint>

namespace sabot {

// Not thread-safe: one watcher thread observes.
class StallDetector {
 public:
  using Clock = std::chrono::steady_clock;

  // `timeout` <= 0: never stalled.
  StallDetector(std::chrono::milliseconds timeout, Clock::time_point start)
      : timeout_(timeout), last_change_(start) {}

  // True when the job is stalled at `now`. `busy`: a step runs, or a task waits for a time.
  bool Observe(int64_t signature, bool busy, Clock::time_point now) {
    if (timeout_.count() <= 0) return false;
    if (signature != last_signature_ || busy) {
      last_signature_ = signature;
      last_change_ = now;
      return false;
    }
    return now - last_change_ >= timeout_;
  }

 private:
  const std::chrono::milliseconds timeout_;
  int64_t last_signature_ = -1;
  Clock::time_point last_change_;
};

}  // namespace sabot
