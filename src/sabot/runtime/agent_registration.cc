#include "sabot/runtime/agent_registration.h"

#include <algorithm>
#include <cstdio>

#include "sabot/common/logging.h"

namespace sabot {

arrow::Result<std::unique_ptr<AgentRegistration>> AgentRegistration::Start(
    AgentRegistrationOptions options) {
  if (options.slots < 1) {
    return arrow::Status::Invalid("an agent needs at least 1 slot, got ", options.slots);
  }
  if (options.location.empty()) {
    return arrow::Status::Invalid("an agent registers with the location of its server");
  }
  if (options.initial_retry.count() <= 0 || options.max_retry < options.initial_retry) {
    return arrow::Status::Invalid("registration retry waits must be positive and ordered");
  }
  options.client.call_timeout = options.call_timeout;
  options.client.max_attempts = 1;
  ARROW_ASSIGN_OR_RAISE(auto client, CoordinatorClient::Make(options.coordinator, options.client));
  std::unique_ptr<AgentRegistration> registration(
      new AgentRegistration(std::move(options), std::move(client)));
  AgentRegistration* self = registration.get();
  self->thread_ = std::thread([self] { self->Loop(); });
  return registration;
}

AgentRegistration::~AgentRegistration() { Stop(); }

void AgentRegistration::Stop() {
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string AgentRegistration::agent_id() const {
  std::unique_lock lock(mutex_);
  return agent_id_;
}

bool AgentRegistration::WaitRegistered(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return wake_.wait_for(lock, timeout, [this] { return !agent_id_.empty() || stopping_; }) &&
         !agent_id_.empty();
}

bool AgentRegistration::Sleep(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, duration, [this] { return stopping_; });
}

void AgentRegistration::Say(const std::string& text) const {
  // One write per line, so that lines of several threads or processes never interleave.
  std::string line = "sabot agent '" + options_.name + "': " + text + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void AgentRegistration::Loop() {
  std::chrono::milliseconds retry = options_.initial_retry;
  std::chrono::milliseconds interval{1000};
  std::string id;
  std::string last_error;  // the failure last reported, so that an outage is logged once
  auto failed = [&](const arrow::Status& status, std::string_view doing) {
    std::string text = std::string(doing) + ": " + CoordinatorErrorText(status);
    if (text != last_error) {
      Say(text + "; retrying");
      last_error = std::move(text);
    }
  };
  while (true) {
    const auto [budget, used] =
        options_.memory ? options_.memory() : std::pair<int64_t, int64_t>{0, 0};
    if (id.empty()) {
      AgentRegistrationRequest request{options_.location, options_.slots, options_.name, budget,
                                       used};
      auto reply = client_->RegisterAgent(request);
      if (!reply.ok()) {
        failed(reply.status(), "cannot register with the coordinator");
        if (!Sleep(retry)) return;
        retry = std::min(retry * 2, options_.max_retry);
        continue;
      }
      id = reply->agent_id;
      interval = reply->heartbeat_interval;
      retry = options_.initial_retry;
      last_error.clear();
      registrations_.fetch_add(1);
      Say("registered with the coordinator at " + options_.coordinator + " as " + id + " (" +
          std::to_string(options_.slots) + (options_.slots == 1 ? " slot)" : " slots)"));
      {
        std::unique_lock lock(mutex_);
        agent_id_ = id;
      }
      wake_.notify_all();
    } else {
      auto known = client_->Heartbeat(id, budget, used);
      if (!known.ok()) {
        failed(known.status(), "heartbeat to the coordinator failed");
      } else if (!*known) {
        Say("the coordinator does not know " + id +
            " (it restarted, or declared this agent lost); registering again");
        id.clear();
        continue;
      } else {
        last_error.clear();
      }
    }
    if (!Sleep(interval)) return;
  }
}

}  // namespace sabot
