#pragma once

// An agent's membership in a cluster (`sabot agent --coordinator URI`): registers with the
// coordinator and heartbeats, from a thread of its own.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <arrow/result.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/runtime/coordinator_client.h"

namespace sabot {

struct AgentRegistrationOptions {
  std::string coordinator;  // the coordinator's URI
  // How the agent reaches the coordinator: TLS roots, client certificate, the cluster's token.
  ShuffleClientOptions client;
  // What the agent registers: its own server's location, slots, its --agent-id.
  std::string location;
  int32_t slots = 1;
  std::string name;
  // The agent's memory now: {budget, used} bytes; sent with every heartbeat. Unset: zeros.
  std::function<std::pair<int64_t, int64_t>()> memory;
  // Waits between attempts while the coordinator cannot be reached or refuses: doubling from
  // `initial_retry` up to `max_retry`.
  std::chrono::milliseconds initial_retry{200};
  std::chrono::milliseconds max_retry{5'000};
  // Deadline of each call to the coordinator.
  std::chrono::milliseconds call_timeout{5'000};
};

// Keeps an agent registered. The thread registers (retrying while the coordinator is
// unreachable or refuses, logging each new failure once), then heartbeats at the interval the
// coordinator asked for; when a heartbeat says the coordinator does not know the agent (it
// restarted, or declared the agent lost), it registers again. Failed heartbeats are retried
// and do not end the membership: a coordinator that comes back is found again.
//
// Lifecycle: Start() starts the thread; Stop() or the destructor ends it (an attempt in
// progress ends within call_timeout). Thread safety: the accessors may be called from any
// thread.
class AgentRegistration {
 public:
  static arrow::Result<std::unique_ptr<AgentRegistration>> Start(AgentRegistrationOptions options);
  ~AgentRegistration();

  void Stop();
  // The id the coordinator gave at the last registration; "" before the first.
  std::string agent_id() const;
  // Registrations so far (more than 1 after the coordinator restarted or lost the agent).
  int64_t registrations() const { return registrations_.load(); }
  // Waits until registered (true), or `timeout` passed (false).
  bool WaitRegistered(std::chrono::milliseconds timeout);

 private:
  AgentRegistration(AgentRegistrationOptions options, std::unique_ptr<CoordinatorClient> client)
      : options_(std::move(options)), client_(std::move(client)) {}
  void Loop();
  // Prints "sabot agent '<name>': <text>" on stderr.
  void Say(const std::string& text) const;
  // Sleeps `duration` unless stopped first; false once stopped.
  bool Sleep(std::chrono::milliseconds duration);

  const AgentRegistrationOptions options_;
  std::unique_ptr<CoordinatorClient> client_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ SABOT_GUARDED_BY(mutex_) = false;
  std::string agent_id_ SABOT_GUARDED_BY(mutex_);
  std::atomic<int64_t> registrations_{0};
  std::thread thread_;
};

}  // namespace sabot
