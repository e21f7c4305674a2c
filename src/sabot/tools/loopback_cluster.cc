#include "sabot/tools/loopback_cluster.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/agent_process.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/coordinator.h"
#include "sabot/tools/cluster_options.h"

namespace sabot {

namespace {

// A random token for the cluster of one run: no other program on the machine can talk to its
// coordinator or read its shuffles.
std::string RandomToken() {
  std::random_device random;
  std::string token;
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 40; ++i) token += kHex[random() % 16];
  return token;
}

// Copies what the agents print (their console sinks' rows) to this process's stdout, until
// every pipe ended or Stop() is called; then drains what is left.
class OutputForwarder {
 public:
  explicit OutputForwarder(std::vector<int> fds) : fds_(std::move(fds)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~OutputForwarder() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::vector<pollfd> polled;
    for (int fd : fds_) {
      if (fd >= 0) polled.push_back({fd, POLLIN, 0});
    }
    while (!polled.empty()) {
      const int ready = poll(polled.data(), polled.size(), stop_.load() ? 0 : 100);
      if (ready < 0 && errno != EINTR) return;
      if (ready <= 0) {
        if (stop_.load()) return;  // drained
        continue;
      }
      for (size_t i = 0; i < polled.size();) {
        if (polled[i].revents == 0) {
          ++i;
          continue;
        }
        char chunk[8192];
        const ssize_t n = read(polled[i].fd, chunk, sizeof(chunk));
        if (n > 0) {
          std::fwrite(chunk, 1, static_cast<size_t>(n), stdout);
          std::fflush(stdout);
          polled[i].revents = 0;
          ++i;
        } else if (n < 0 && errno == EINTR) {
          ++i;
        } else {
          polled.erase(polled.begin() + static_cast<std::ptrdiff_t>(i));  // end of file
        }
      }
    }
  }

  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Everything the run started, stopped however it ends: the coordinator first (it cancels the
// job), then the agents (the shutdown action, so that they end quietly; then SIGTERM and, after
// a grace period, SIGKILL for any still there; all reaped), then the forwarder and the private
// folder with the token.
struct LoopbackCluster {
  std::string folder;
  std::unique_ptr<Coordinator> coordinator;
  std::unique_ptr<ShuffleClient> client;  // reaches the agents with the run's token
  std::vector<std::unique_ptr<AgentProcess>> agents;
  std::unique_ptr<OutputForwarder> forwarder;
  // One per replacement agent (its own stdout).
  std::vector<std::unique_ptr<OutputForwarder>> replacement_forwarders;

  ~LoopbackCluster() {
    if (coordinator) ARROW_UNUSED(coordinator->Shutdown());
    std::vector<AgentProcess*> all;
    for (auto& agent : agents) all.push_back(agent.get());
    if (client) {
      for (AgentProcess* agent : all) {
        ARROW_UNUSED(client->Action(agent->location(), kActionShutdown, ""));
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      bool reaped = false;
      while (!reaped && std::chrono::steady_clock::now() < deadline) {
        reaped = true;
        for (AgentProcess* agent : all) reaped = agent->TryReap() && reaped;
        if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    StopAgents(all);
    if (forwarder) forwarder->Stop();
    for (auto& replacement : replacement_forwarders) replacement->Stop();
    agents.clear();
    coordinator.reset();
    std::error_code ignored;
    if (!folder.empty()) std::filesystem::remove_all(folder, ignored);
  }
};

// Replacement agent processes one run starts at most (a job whose agents keep dying fails by its
// restart strategy long before).
constexpr int32_t kMaxReplacementAgents = 1000;

int Failed(const std::string& message, int code) {
  std::cerr << "sabot run: " << message << "\n";
  return code;
}

}  // namespace

int RunOnLoopbackCluster(const JobFile& job, const LoopbackClusterOptions& options) {
  if (options.agents < 1 || options.agents > 64) {
    return Failed("--agents must be between 1 and 64, got " + std::to_string(options.agents), 2);
  }
  auto plan_json = PlanToJson(job.plan);
  if (!plan_json.ok()) return Failed(job.display_name + ": " + plan_json.status().message(), 2);
  auto binary = CurrentExecutable();
  if (!binary.ok()) return Failed(binary.status().ToString(), 1);

  SignalCancel signals;
  LoopbackCluster cluster;
  char folder[] = "/tmp/sabot-run-XXXXXX";
  if (mkdtemp(folder) == nullptr) {
    return Failed(std::string("cannot create a private folder in /tmp: ") + std::strerror(errno),
                  1);
  }
  cluster.folder = folder;
  const std::string token = RandomToken();
  const std::string token_file = cluster.folder + "/token";
  {
    std::ofstream out(token_file);
    out << token << "\n";
    if (!out) return Failed("cannot write " + token_file, 1);
  }
  chmod(token_file.c_str(), S_IRUSR | S_IWUSR);

  CoordinatorOptions coordinator;
  coordinator.server.host = "127.0.0.1";
  coordinator.server.port = 0;
  coordinator.server.auth_token = token;
  coordinator.client.auth_token = token;
  // Agents are children on this machine: a short timeout finds a dead one within seconds.
  coordinator.agent_timeout = std::chrono::seconds(3);
  coordinator.heartbeat_interval = std::chrono::milliseconds(200);
  coordinator.default_memory_budget = options.memory_budget;
  coordinator.runner = DefaultJobRunner();
  ShuffleClientOptions client;
  client.auth_token = token;
  client.call_timeout = std::chrono::seconds(2);
  client.max_attempts = 1;
  auto agent_client = ShuffleClient::Make(client);
  if (!agent_client.ok()) return Failed(agent_client.status().ToString(), 1);
  cluster.client = std::move(*agent_client);
  auto made = Coordinator::Make(std::move(coordinator));
  if (!made.ok()) return Failed("cannot start the coordinator: " + made.status().ToString(), 1);
  cluster.coordinator = std::move(*made);

  // A job takes as many slots as its largest parallelism: spread over the agents.
  int32_t needed = 1;
  for (const auto& op : job.plan.operators()) needed = std::max(needed, op.parallelism);
  const int32_t slots = (needed + options.agents - 1) / options.agents;
  auto agent_args = [&](int32_t number) {
    std::vector<std::string> args = {
        "agent", "--coordinator", cluster.coordinator->location(), "--slots",
        std::to_string(slots), "--port", "0", "--agent-id", "run-agent-" + std::to_string(number),
        "--token-file", token_file, "--memory-budget-mib",
        std::to_string(std::max<int64_t>(1, options.memory_budget >> 20))};
    if (!options.spill_dir.empty()) {
      args.push_back("--spill-dir");
      args.push_back(options.spill_dir);
    }
    return args;
  };
  for (int32_t i = 0; i < options.agents; ++i) {
    auto started = AgentProcess::Start(*binary, agent_args(i + 1));
    if (!started.ok()) return Failed("cannot start agent " + std::to_string(i + 1) + ": " +
                                         started.status().message(), 1);
    cluster.agents.push_back(std::move(*started));
    if (SignalCancel::signal() != 0) return 128 + SignalCancel::signal();
  }
  std::vector<int> fds;
  for (const auto& agent : cluster.agents) fds.push_back(agent->stdout_fd());
  cluster.forwarder = std::make_unique<OutputForwarder>(std::move(fds));

  // Every agent registers (its first heartbeat round) before the job is submitted.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    int32_t live = 0;
    for (const auto& agent : cluster.coordinator->Agents()) live += agent.lost ? 0 : 1;
    if (live >= options.agents) break;
    if (SignalCancel::signal() != 0) return 128 + SignalCancel::signal();
    for (auto& agent : cluster.agents) {
      if (agent->TryReap()) {
        return Failed("agent process " + std::to_string(agent->pid()) +
                          " exited before it registered with the coordinator",
                      1);
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Failed(std::to_string(live) + " of " + std::to_string(options.agents) +
                        " agents registered with the coordinator within 30 s",
                    1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  JobSubmission submission;
  submission.name = job.name;
  submission.plan_json = std::move(*plan_json);
  submission.memory_budget_bytes = options.memory_budget;
  submission.state_budget_bytes = options.state_budget_per_task;
  auto id = cluster.coordinator->Submit(submission);
  if (!id.ok()) {
    return Failed(Located(job, StatusText(id.status())),
                  id.status().IsInvalid() || id.status().IsCapacityError() ? 2 : 1);
  }
  Coordinator* running = cluster.coordinator.get();
  JobHandle handle;
  // An agent process that dies while the job runs (killed: the chaos test) is replaced by a new
  // one, which registers under a new id: a job with checkpoints restarts on it.
  int32_t next_agent = options.agents + 1;
  bool replacing = true;
  auto replace_dead_agents = [&]() {
    if (!replacing) return;
    for (size_t i = 0; i < cluster.agents.size(); ++i) {
      AgentProcess* agent = cluster.agents[i].get();
      if (agent->reaped() || !agent->TryReap()) continue;
      if (next_agent > options.agents + kMaxReplacementAgents) {
        std::cerr << "sabot run: agent process " << agent->pid() << " ended; "
                  << kMaxReplacementAgents << " replacements were started already, no more\n";
        replacing = false;
        return;
      }
      const int32_t number = next_agent++;
      std::cerr << "sabot run: agent process " << agent->pid()
                << " ended; starting a replacement (run-agent-" << number << ")\n";
      auto started = AgentProcess::Start(*binary, agent_args(number));
      if (!started.ok()) {
        std::cerr << "sabot run: cannot start a replacement agent: "
                  << started.status().message() << "\n";
        continue;
      }
      cluster.replacement_forwarders.push_back(
          std::make_unique<OutputForwarder>(std::vector<int>{(*started)->stdout_fd()}));
      cluster.agents.push_back(std::move(*started));
    }
  };
  handle.poll = [running, &id, &replace_dead_agents](std::chrono::milliseconds wait) {
    replace_dead_agents();
    return running->WaitForJob(*id, wait);
  };
  handle.cancel = [running, &id] { return running->Cancel(*id); };
  return FollowJob(handle, "sabot run", &job, options.progress);
}

}  // namespace sabot
