#include "sabot/transport/deadline_watchdog.h"

namespace sabot {

DeadlineWatchdog& DeadlineWatchdog::Global() {
  // Never destroyed: Flight threads may still disarm deadlines while the process exits.
  static DeadlineWatchdog* watchdog = new DeadlineWatchdog();
  return *watchdog;
}

DeadlineWatchdog::DeadlineWatchdog() : thread_([this] { Loop(); }) {}

DeadlineWatchdog::~DeadlineWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

DeadlineWatchdog::Id DeadlineWatchdog::Arm(Clock::time_point deadline,
                                           std::function<void()> on_expiry) {
  Id id;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = next_id_++;
    entries_.emplace(id, Entry{deadline, std::move(on_expiry)});
    wake = deadline < sleeping_until_;
  }
  if (wake) changed_.notify_all();
  return id;
}

bool DeadlineWatchdog::Disarm(Id id) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (entries_.erase(id) > 0) return false;
  changed_.wait(lock, [&] { return firing_ != id; });
  return true;
}

void DeadlineWatchdog::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    auto earliest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (earliest == entries_.end() || it->second.deadline < earliest->second.deadline) {
        earliest = it;
      }
    }
    if (earliest == entries_.end()) {
      sleeping_until_ = Clock::time_point::max();
      changed_.wait(lock);
      sleeping_until_ = Clock::time_point::min();
      continue;
    }
    // A copy: the entry may be disarmed (erased) while this thread waits.
    const Clock::time_point deadline = earliest->second.deadline;
    if (Clock::now() < deadline) {
      sleeping_until_ = deadline;
      changed_.wait_until(lock, deadline);
      sleeping_until_ = Clock::time_point::min();
      continue;
    }
    Id id = earliest->first;
    std::function<void()> on_expiry = std::move(earliest->second.on_expiry);
    entries_.erase(earliest);
    firing_ = id;
    lock.unlock();
    on_expiry();
    lock.lock();
    firing_ = 0;
    changed_.notify_all();
  }
}

}  // namespace sabot
