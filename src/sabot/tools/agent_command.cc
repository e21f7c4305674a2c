#include "sabot/tools/agent_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/job_file.h"
#include "sabot/memory/spill_manager.h"
#include "sabot/runtime/agent.h"
#include "sabot/runtime/agent_registration.h"
#include "sabot/tools/cluster_options.h"

namespace sabot {

namespace {

struct AgentOptions {
  std::string host = "127.0.0.1";
  int port = kDefaultShufflePort;
  std::string agent_id = "agent";
  int64_t memory_budget_mib = BudgetedMemoryPool::kDefaultBudgetBytes >> 20;
  std::string spill_dir;
  // Set by a job manager that starts the agent as its child (AgentProcess).
  int64_t parent_pid = 0;
  int lifeline_fd = -1;
  int64_t control_timeout_s = 0;
  // A deployed job whose driver sent no control call for this long is aborted and released.
  std::string job_timeout = "30s";
  // Membership in a cluster: the coordinator to register with, and the slots offered.
  ClusterCommandOptions cluster;
  int32_t slots = 1;
  // The options given on the command line (they override the --config file).
  CLI::App* command = nullptr;
};

[[noreturn]] void Fail(const arrow::Status& status, int exit_code) {
  std::cerr << "sabot agent: " << status.CodeAsString() << ": " << status.message() << "\n";
  throw CLI::RuntimeError(exit_code);
}

// Watches what tells a managed agent that its job manager is gone, and stops the agent then:
// end of file on the lifeline pipe (the job manager holds its other end; the kernel closes it
// however the job manager ends, SIGKILL included), and silence on the control connection for
// longer than `control_timeout` (the job manager's progress polls are its heartbeat). One
// thread, woken every second or by Wake().
class ParentWatch {
 public:
  ParentWatch(Agent* agent, const AgentOptions& options) : agent_(agent), options_(options) {
    if (pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
    thread_ = std::thread([this] { Loop(); });
  }
  ~ParentWatch() {
    Wake();
    thread_.join();
    for (int fd : wake_) {
      if (fd >= 0) close(fd);
    }
  }

 private:
  void Wake() {
    stopping_.store(true);  // seen within a second even when the wake-up pipe could not be made
    if (wake_[1] >= 0) {
      const char byte = 0;
      ARROW_UNUSED(write(wake_[1], &byte, 1));
    }
  }

  void Loop() {
    const auto control_timeout = std::chrono::seconds(options_.control_timeout_s);
    while (true) {
      pollfd fds[2] = {{wake_[0], POLLIN, 0}, {options_.lifeline_fd, POLLIN, 0}};
      const int count = options_.lifeline_fd >= 0 ? 2 : 1;
      const int ready = poll(fds, count, 1000);
      if (ready < 0 && errno != EINTR) return;
      if (fds[0].revents != 0 || stopping_.load()) return;  // the agent is shutting down
      if (count == 2 && fds[1].revents != 0) {
        // Nothing is ever written to the lifeline: readable means end of file.
        agent_->Stop(arrow::Status::Cancelled(
            "agent '", options_.agent_id, "' lost its job manager: the lifeline pipe closed "
            "(the job manager ended, or is stopping its agents)"));
        return;
      }
      if (control_timeout.count() > 0 &&
          std::chrono::steady_clock::now() - agent_->last_control_action() > control_timeout) {
        agent_->Stop(arrow::Status::Cancelled(
            "agent '", options_.agent_id, "' heard nothing from its job manager for ",
            options_.control_timeout_s, " s (--control-timeout-s): the control connection is "
            "lost"));
        return;
      }
    }
  }

  Agent* agent_;
  const AgentOptions& options_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The --config file's agent section and security, under what the command line gave.
ClusterSecurity ApplyConfig(AgentOptions* options) {
  auto resolved = ResolveCluster(options->cluster);
  if (!resolved.ok()) Fail(resolved.status(), 2);
  const ClusterConfig::Agent& file = resolved->config.agent;
  auto given = [&](const char* name) { return options->command->count(name) > 0; };
  if (!given("--host") && file.host) options->host = *file.host;
  if (!given("--port") && file.port) options->port = *file.port;
  if (!given("--slots") && file.slots) options->slots = *file.slots;
  if (!given("--memory-budget-mib") && file.memory_budget_bytes) {
    options->memory_budget_mib = *file.memory_budget_bytes >> 20;
  }
  if (!given("--spill-dir") && file.spill_dir) options->spill_dir = *file.spill_dir;
  if (options->cluster.coordinator.empty() && resolved->config.coordinator.address) {
    options->cluster.coordinator = *resolved->config.coordinator.address;
  }
  return resolved->security;
}

void Run(AgentOptions& options) {
  const ClusterSecurity security = ApplyConfig(&options);
  if (options.slots < 1 || options.slots > 4096) {
    Fail(arrow::Status::Invalid("--slots must be between 1 and 4096, got ", options.slots), 2);
  }
  if (options.port < 0 || options.port > 65535) {
    Fail(arrow::Status::Invalid("--port must be between 0 and 65535, got ", options.port), 2);
  }
  if (options.memory_budget_mib < 1) {
    Fail(arrow::Status::Invalid("--memory-budget-mib must be >= 1, got ",
                                options.memory_budget_mib),
         2);
  }
  if (options.control_timeout_s < 0) {
    Fail(arrow::Status::Invalid("--control-timeout-s must be >= 0, got ",
                                options.control_timeout_s),
         2);
  }
  if (options.parent_pid > 0) {
    // The kernel sends SIGTERM when the thread that started this process ends; it may have
    // ended already, before this call: then the parent is no longer `parent_pid`.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != static_cast<pid_t>(options.parent_pid)) {
      Fail(arrow::Status::Cancelled("the job manager (pid ", options.parent_pid,
                                    ") exited before agent '", options.agent_id, "' started"),
           1);
    }
  }
  if (options.lifeline_fd >= 0 && fcntl(options.lifeline_fd, F_SETFD, FD_CLOEXEC) != 0) {
    Fail(arrow::Status::Invalid("--lifeline-fd ", options.lifeline_fd, " is not open: ",
                                std::strerror(errno)),
         2);
  }
  // Signals are taken by one thread (sigwait) so that Flight's threads never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Spill folders of agents that were killed (their lock is free) go before this one spills.
  auto swept = SweepStaleSpillRoots(options.spill_dir);
  if (!swept.ok()) Fail(swept.status(), 1);
  for (const auto& root : *swept) {
    std::cerr << "sabot agent: removed the stale spill folder " << root
              << " of a process that is gone\n";
  }

  EngineOptions engine;
  engine.server.host = options.host;
  engine.server.port = options.port;
  engine.manager.agent_id = options.agent_id;
  engine.manager.memory_budget = options.memory_budget_mib << 20;
  engine.manager.spill.directory = options.spill_dir;
  // The cluster's security: this agent's server asks every caller for the token (and, with
  // mutual TLS, a certificate); its client presents them to the other agents.
  security.ApplyTo(&engine.server);
  security.ApplyTo(&engine.client);
  AgentJobOptions jobs;
  auto job_timeout = ParseDuration(options.job_timeout);
  if (!job_timeout.ok()) {
    Fail(arrow::Status::Invalid("--job-timeout: ", job_timeout.status().message()), 2);
  }
  if (job_timeout->count() <= 0) {
    Fail(arrow::Status::Invalid("--job-timeout must be positive, got ",
                                QuoteInput(options.job_timeout)),
         2);
  }
  jobs.job_timeout = *job_timeout;
  auto made = Agent::Make(engine, jobs);
  if (!made.ok()) Fail(made.status(), 1);
  std::unique_ptr<Agent> agent = std::move(made).ValueUnsafe();
  std::printf("sabot agent listening on %s\n", agent->location().c_str());
  std::fflush(stdout);

  // With --coordinator: register and heartbeat until the agent stops.
  std::unique_ptr<AgentRegistration> registration;
  if (!options.cluster.coordinator.empty()) {
    AgentRegistrationOptions membership;
    membership.coordinator = options.cluster.coordinator;
    security.ApplyTo(&membership.client);
    membership.location = agent->location();
    membership.slots = options.slots;
    membership.name = options.agent_id;
    Agent* serving = agent.get();
    membership.memory = [serving] {
      BudgetedMemoryPool* pool = serving->engine()->shuffle_manager()->pool();
      return std::pair<int64_t, int64_t>{pool->budget(), pool->bytes_allocated()};
    };
    auto started = AgentRegistration::Start(std::move(membership));
    if (!started.ok()) Fail(started.status(), 2);
    registration = std::move(*started);
  }

  int received = 0;
  std::thread signal_waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    if (agent->stop_reason().ok()) received = signal;
    agent->Stop(arrow::Status::Cancelled("agent '", options.agent_id, "' received ",
                                         signal == SIGINT ? "SIGINT" : "SIGTERM"));
  });
  {
    std::unique_ptr<ParentWatch> watch;
    if (options.lifeline_fd >= 0 || options.control_timeout_s > 0) {
      watch = std::make_unique<ParentWatch>(agent.get(), options);
    }
    agent->WaitForShutdown();
  }
  // Wake the signal thread if the shutdown came from elsewhere.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  registration.reset();
  const arrow::Status reason = agent->stop_reason();
  // Cancels what still runs, releases every shuffle (deleting its spill files), stops serving.
  agent.reset();
  if (reason.ok()) return;  // the shutdown action
  std::cerr << "sabot agent: " << reason.message()
            << "; its tasks were cancelled and its spill files removed\n";
  // 128 + the signal, as a shell reports a process a signal ended; 1 when its job manager left.
  throw CLI::RuntimeError(received != 0 ? 128 + received : 1);
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
  command->add_option("--parent-pid", options->parent_pid,
                      "Set by the job manager that starts this agent: exit (SIGTERM) when that "
                      "process's starting thread ends");
  command->add_option("--lifeline-fd", options->lifeline_fd,
                      "Set by the job manager that starts this agent: a pipe it holds open; end "
                      "of file on it stops the agent");
  command->add_option("--control-timeout-s", options->control_timeout_s,
                      "Stop when no control action arrives for this many seconds (0: never); "
                      "a job manager polls progress about every 200 ms")
      ->capture_default_str();
  command->add_option("--job-timeout", options->job_timeout,
                      "Abort and release a deployed job when its driver sends no control call "
                      "about it for this long (it polls every 100 ms): 30s, 500ms, 1m, ...")
      ->capture_default_str();
  command->add_option("--coordinator", options->cluster.coordinator,
                      "Join the cluster of this coordinator (grpc+tcp://host:port): register, "
                      "heartbeat, and run the tasks it places here; retried while it cannot be "
                      "reached (default: coordinator.address of --config, else none)");
  command->add_option("--slots", options->slots,
                      "Tasks of a job this agent runs at once, offered to the coordinator "
                      "(default: the config file's, else 1)");
  AddSecurityOptions(command, &options->cluster);
  options->command = command;
  command->callback([options] { Run(*options); });
}

}  // namespace sabot
