#include "sabot/runtime/agent_registration.h"

#include <thread>

#include <gtest/gtest.h>

#include "sabot/runtime/coordinator.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

using std::chrono::milliseconds;

JobReport NoJob(const LogicalPlan&, const std::vector<AgentEndpoint>&,
                const DistributedJobOptions&) {
  return JobReport{};
}

struct FakeClock {
  std::atomic<int64_t> ms{1'000'000};
};

std::unique_ptr<Coordinator> StartCoordinator(int port, FakeClock* clock = nullptr) {
  CoordinatorOptions options;
  options.server.port = port;
  options.server.auth_token = "t0ken";
  options.heartbeat_interval = milliseconds(20);
  options.runner = NoJob;
  if (clock != nullptr) {
    options.monitor = false;
    options.clock = [clock] {
      return std::chrono::steady_clock::time_point(milliseconds(clock->ms.load()));
    };
  }
  auto made = Coordinator::Make(std::move(options));
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? std::move(*made) : nullptr;
}

AgentRegistrationOptions Options(int port) {
  AgentRegistrationOptions options;
  options.coordinator = "grpc+tcp://127.0.0.1:" + std::to_string(port);
  options.client.auth_token = "t0ken";
  options.location = "grpc+tcp://127.0.0.1:9999";
  options.slots = 3;
  options.name = "worker";
  options.memory = [] { return std::pair<int64_t, int64_t>{1 << 20, 4096}; };
  options.initial_retry = milliseconds(10);
  options.max_retry = milliseconds(50);
  return options;
}

// Waits (bounded) until `registration` registered `count` times.
bool WaitRegistrations(const AgentRegistration& registration, int64_t count) {
  for (int i = 0; i < 3000 && registration.registrations() < count; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  return registration.registrations() >= count;
}

TEST(AgentRegistrationTest, RetriesUntilTheCoordinatorComesAndAfterItRestarts) {
  // A port nothing listens on, once the first coordinator is gone.
  auto first = StartCoordinator(0);
  ASSERT_NE(first, nullptr);
  const std::string location = first->location();
  const int port = std::stoi(location.substr(location.rfind(':') + 1));
  ASSERT_OK(first->Shutdown());
  first.reset();

  ASSERT_OK_AND_ASSIGN(auto registration, AgentRegistration::Start(Options(port)));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(registration->registrations(), 0);
  EXPECT_EQ(registration->agent_id(), "");

  auto coordinator = StartCoordinator(port);
  ASSERT_NE(coordinator, nullptr);
  ASSERT_TRUE(registration->WaitRegistered(milliseconds(30'000)));
  EXPECT_EQ(registration->agent_id(), "agent-1");
  auto agents = coordinator->Agents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].slots, 3);
  EXPECT_EQ(agents[0].location, "grpc+tcp://127.0.0.1:9999");
  EXPECT_EQ(agents[0].memory_budget_bytes, 1 << 20);
  EXPECT_EQ(agents[0].memory_used_bytes, 4096);

  // The coordinator restarts: it knows no agent; the heartbeat says so and the agent registers
  // again.
  ASSERT_OK(coordinator->Shutdown());
  coordinator.reset();
  coordinator = StartCoordinator(port);
  ASSERT_NE(coordinator, nullptr);
  ASSERT_TRUE(WaitRegistrations(*registration, 2));
  ASSERT_EQ(coordinator->Agents().size(), 1u);
  EXPECT_FALSE(coordinator->Agents()[0].lost);
  registration->Stop();
}

TEST(AgentRegistrationTest, AnAgentDeclaredLostRegistersAgain) {
  FakeClock clock;
  auto coordinator = StartCoordinator(0, &clock);
  ASSERT_NE(coordinator, nullptr);
  const std::string location = coordinator->location();
  const int port = std::stoi(location.substr(location.rfind(':') + 1));
  ASSERT_OK_AND_ASSIGN(auto registration, AgentRegistration::Start(Options(port)));
  ASSERT_TRUE(registration->WaitRegistered(milliseconds(30'000)));
  EXPECT_EQ(registration->agent_id(), "agent-1");
  // Silence beyond the timeout on the coordinator's clock: lost.
  clock.ms += 60'000;
  coordinator->CheckAgents();
  ASSERT_TRUE(WaitRegistrations(*registration, 2));
  EXPECT_EQ(registration->agent_id(), "agent-2");
  auto agents = coordinator->Agents();
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_TRUE(agents[0].lost);
  EXPECT_FALSE(agents[1].lost);
}

TEST(AgentRegistrationTest, BadOptionsAreRefused) {
  auto options = Options(1);
  options.slots = 0;
  ASSERT_RAISES_WITH(Invalid, "at least 1 slot", AgentRegistration::Start(options));
  options = Options(1);
  options.coordinator = "http://x";
  ASSERT_RAISES_WITH(Invalid, "is not grpc+tcp://", AgentRegistration::Start(options));
}

}  // namespace
}  // namespace sabot
