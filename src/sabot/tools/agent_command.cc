#include "sabot/tools/agent_command.h"

#include <signal.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "sabot/runtime/agent.h"

namespace sabot {

namespace {

struct AgentOptions {
  std::string host = "127.0.0.1";
  int port = kDefaultShufflePort;
  std::string agent_id = "agent";
  int64_t memory_budget_mib = BudgetedMemoryPool::kDefaultBudgetBytes >> 20;
  std::string spill_dir;
};

[[noreturn]] void Fail(const arrow::Status& status, int exit_code) {
  std::cerr << "sabot agent: " << status.CodeAsString() << ": " << status.message() << "\n";
  throw CLI::RuntimeError(exit_code);
}

void Run(const AgentOptions& options) {
  if (options.port < 0 || options.port > 65535) {
    Fail(arrow::Status::Invalid("--port must be between 0 and 65535, got ", options.port), 2);
  }
  if (options.memory_budget_mib < 1) {
    Fail(arrow::Status::Invalid("--memory-budget-mib must be >= 1, got ",
                                options.memory_budget_mib),
         2);
  }
  // Signals are taken by one thread (sigwait) so that Flight's threads never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  EngineOptions engine;
  engine.server.host = options.host;
  engine.server.port = options.port;
  engine.manager.agent_id = options.agent_id;
  engine.manager.memory_budget = options.memory_budget_mib << 20;
  engine.manager.spill.directory = options.spill_dir;
  auto made = Agent::Make(engine);
  if (!made.ok()) Fail(made.status(), 1);
  std::unique_ptr<Agent> agent = std::move(made).ValueUnsafe();
  std::printf("sabot agent listening on %s\n", agent->location().c_str());
  std::fflush(stdout);

  std::thread signal_waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    agent->Shutdown();
  });
  agent->WaitForShutdown();
  // Wake the signal thread if the shutdown came from a control action.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  agent.reset();
}

}  // namespace

void AddAgentCommand(CLI::App& app) {
  auto options = std::make_shared<AgentOptions>();
  auto* command = app.add_subcommand("agent", "Run one agent of a distributed job");
  command->add_option("--host", options->host, "Address to listen on")->capture_default_str();
  command->add_option("--port", options->port, "Port to listen on (0: any free port)")
      ->capture_default_str();
  command->add_option("--agent-id", options->agent_id, "Name of this agent in logs and errors")
      ->capture_default_str();
  command->add_option("--memory-budget-mib", options->memory_budget_mib,
                      "Memory budget for all shuffles of this agent, in MiB")
      ->capture_default_str();
  command->add_option("--spill-dir", options->spill_dir,
                      "Directory for spill files (default: the system's temporary directory)");
  command->callback([options] { Run(*options); });
}

}  // namespace sabot
