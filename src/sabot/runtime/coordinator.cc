#include "sabot/runtime/coordinator.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <set>
#include <utility>

#include <arrow/buffer.h>

#include "sabot/common/logging.h"
#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/explain.h"
#include "sabot/dataflow/file_sink.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/cluster_actions.h"
#include "sabot/runtime/control_message.h"
#include "sabot/runtime/lineage_recovery.h"
#include "sabot/transport/in_memory_partition_store.h"

namespace sabot {

namespace {

constexpr int32_t kMaxSlotsPerAgent = 4096;
// Lost agents kept in the list (for `sabot jobs` and the API) before the oldest are forgotten.
constexpr size_t kLostAgentsKept = 64;
constexpr size_t kMaxJobNameBytes = 128;
constexpr size_t kMaxLocationBytes = 512;
constexpr size_t kMaxAgents = 10'000;
// Heartbeat intervals after which an agent gets no new job until it is heard from again.
constexpr int kFreshHeartbeats = 3;

std::string Seconds(std::chrono::milliseconds duration) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", static_cast<double>(duration.count()) / 1000.0);
  return text;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Removes the temporary files of `plan`'s file sinks for job `job_id` (file_sink.h names them),
// in local directories; how many there were. After a failed job: the driver aborts the tasks
// of the agents it reaches, which remove theirs, but a lost agent's tasks cannot.
int RemoveTemporarySinkFiles(const LogicalPlan& plan, const std::string& job_id) {
  int removed = 0;
  for (const auto& op : plan.operators()) {
    const auto* sink = std::get_if<FileSinkParams>(&op.params);
    if (sink == nullptr || sink->directory.find("://") != std::string::npos) continue;
    for (int32_t subtask = 0; subtask < op.parallelism; ++subtask) {
      std::error_code error;
      const auto path = std::filesystem::path(sink->directory) /
                        FileSinkTempName(sink->format, subtask, job_id);
      if (std::filesystem::remove(path, error)) ++removed;
    }
  }
  return removed;
}

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options) : options_(std::move(options)) {}

arrow::Result<std::unique_ptr<Coordinator>> Coordinator::Make(CoordinatorOptions options) {
  if (!options.runner) options.runner = RunDistributedJob;
  if (options.agent_timeout.count() <= 0) {
    return arrow::Status::Invalid("the agent timeout must be positive, got ",
                                  options.agent_timeout.count(), " ms");
  }
  if (options.heartbeat_interval.count() <= 0 ||
      options.heartbeat_interval >= options.agent_timeout) {
    return arrow::Status::Invalid("the heartbeat interval (", options.heartbeat_interval.count(),
                                  " ms) must be positive and below the agent timeout (",
                                  options.agent_timeout.count(), " ms)");
  }
  if (options.job_history < 1) {
    return arrow::Status::Invalid("the job history must keep at least 1 job, got ",
                                  options.job_history);
  }
  if (options.default_memory_budget != 0 && options.default_memory_budget < (int64_t{1} << 20)) {
    return arrow::Status::Invalid("the default memory budget must be at least 1 MiB, got ",
                                  options.default_memory_budget, " bytes");
  }
  if (options.server.actions) {
    return arrow::Status::Invalid("the coordinator answers the control server's actions itself");
  }
  ARROW_RETURN_NOT_OK(options.shuffle.Validate());
  if (!options.clock) options.clock = [] { return std::chrono::steady_clock::now(); };
  std::unique_ptr<Coordinator> coordinator(new Coordinator(std::move(options)));
  Coordinator* self = coordinator.get();
  if (self->options_.serve) {
    ShuffleServerOptions server = self->options_.server;
    server.actions = [self](std::string_view type, const std::string& body) {
      return self->HandleAction(type, body);
    };
    ARROW_ASSIGN_OR_RAISE(auto store, InMemoryPartitionStore::Make());
    ARROW_ASSIGN_OR_RAISE(self->server_, ShuffleServer::Make(server, std::move(store)));
    self->location_ = self->server_->uri();
  }
  if (self->options_.monitor) self->monitor_ = std::thread([self] { self->MonitorLoop(); });
  return coordinator;
}

Coordinator::~Coordinator() { ARROW_UNUSED(Shutdown()); }

std::string Coordinator::location() const { return location_; }

std::chrono::steady_clock::time_point Coordinator::Now() const { return options_.clock(); }

// --- Agents -----------------------------------------------------------------------------------

arrow::Result<AgentRegistrationReply> Coordinator::RegisterAgent(
    const AgentRegistrationRequest& request) {
  if (request.location.size() > kMaxLocationBytes || request.name.size() > kMaxJobNameBytes) {
    return arrow::Status::Invalid("an agent registered with a location of ",
                                  request.location.size(), " bytes and a name of ",
                                  request.name.size(), " bytes; at most ", kMaxLocationBytes,
                                  " and ", kMaxJobNameBytes, " are accepted");
  }
  if (!StartsWith(request.location, "grpc+tcp://") &&
      !StartsWith(request.location, "grpc+tls://")) {
    return arrow::Status::Invalid("agent ", QuoteInput(request.name),
                                  " registered with location ", QuoteInput(request.location),
                                  "; expected grpc+tcp://host:port or grpc+tls://host:port");
  }
  if (request.slots < 1 || request.slots > kMaxSlotsPerAgent) {
    return arrow::Status::Invalid("agent ", QuoteInput(request.name), " at ", request.location,
                                  " offers ", request.slots, " slots; expected 1 to ",
                                  kMaxSlotsPerAgent);
  }
  if (request.memory_budget_bytes < 0 || request.memory_used_bytes < 0) {
    return arrow::Status::Invalid("agent ", QuoteInput(request.name),
                                  " reported negative memory figures");
  }
  std::unique_lock lock(mutex_);
  if (shutting_down_) return arrow::Status::Cancelled("the coordinator is shutting down");
  if (agents_.size() >= kMaxAgents) {
    return arrow::Status::CapacityError("the cluster has ", agents_.size(),
                                        " agents, the most one coordinator accepts");
  }
  for (auto& agent : agents_) {
    if (!agent->info.lost && agent->info.location == request.location) {
      LoseAgentLocked(agent.get(), "registered again from the same location (it restarted)");
    }
  }
  auto entry = std::make_unique<AgentEntry>();
  entry->info.id = "agent-" + std::to_string(next_agent_++);
  entry->info.location = request.location;
  entry->info.slots = request.slots;
  entry->info.registered_at = entry->info.last_heartbeat = std::chrono::system_clock::now();
  entry->info.memory_budget_bytes = request.memory_budget_bytes;
  entry->info.memory_used_bytes = request.memory_used_bytes;
  entry->last_seen = Now();
  AgentRegistrationReply reply;
  reply.agent_id = entry->info.id;
  reply.heartbeat_interval = options_.heartbeat_interval;
  reply.agent_timeout = options_.agent_timeout;
  SABOT_LOG(kInfo) << "agent " << reply.agent_id << " (" << SanitizeMessage(request.name, 64)
                   << ") registered at " << request.location << " with " << request.slots
                   << " slots";
  agents_.push_back(std::move(entry));
  // Forget the oldest lost agents beyond kLostAgentsKept.
  size_t lost = 0;
  for (const auto& agent : agents_) lost += agent->info.lost ? 1 : 0;
  for (auto it = agents_.begin(); lost > kLostAgentsKept && it != agents_.end();) {
    if ((*it)->info.lost) {
      it = agents_.erase(it);
      --lost;
    } else {
      ++it;
    }
  }
  ScheduleLocked();
  return reply;
}

bool Coordinator::Heartbeat(const std::string& agent_id, int64_t memory_budget_bytes,
                            int64_t memory_used_bytes) {
  std::unique_lock lock(mutex_);
  for (auto& agent : agents_) {
    if (agent->info.id != agent_id) continue;
    if (agent->info.lost) return false;
    agent->last_seen = Now();
    agent->info.last_heartbeat = std::chrono::system_clock::now();
    agent->info.memory_budget_bytes = std::max<int64_t>(0, memory_budget_bytes);
    agent->info.memory_used_bytes = std::max<int64_t>(0, memory_used_bytes);
    return true;
  }
  return false;
}

void Coordinator::CheckAgents() {
  std::vector<std::thread> ended;
  {
    std::unique_lock lock(mutex_);
    const auto now = Now();
    for (auto& agent : agents_) {
      if (agent->info.lost) continue;
      const auto silent =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - agent->last_seen);
      if (silent > options_.agent_timeout) {
        LoseAgentLocked(agent.get(), "sent no heartbeat for " + Seconds(silent) +
                                         " s (agent timeout " + Seconds(options_.agent_timeout) +
                                         " s)");
      }
    }
    // Agents heard from again may take the jobs that wait.
    ScheduleLocked();
    ended = TakeEndedThreadsLocked();
  }
  for (auto& thread : ended) thread.join();
}

void Coordinator::LoseAgentLocked(AgentEntry* agent, const std::string& reason) {
  agent->info.lost = true;
  SABOT_LOG(kWarning) << "agent " << agent->info.id << " at " << agent->info.location
                      << " is lost: it " << reason;
  for (auto& [number, job] : jobs_) {
    if (IsFinal(job->info.state) || job->slots_held.count(agent->info.id) == 0) continue;
    if (job->lineage_recoverable) {
      SABOT_LOG(kWarning) << "job " << job->info.id << " runs the lost agent's tasks again "
                          << "(lineage recovery)";
      continue;
    }
    // A job with checkpoints and restarts left is restarted by its runner, which finds the
    // agent lost by itself (it answers no call) and asks for other slots (ReplaceAgents).
    const CheckpointOptions& checkpoint = job->plan->options().checkpoint;
    if (checkpoint.enabled() && checkpoint.max_restarts > 0) continue;
    if (job->failure.empty()) {
      job->failure = "job " + job->info.id + " (" + job->info.name + ") failed: agent " +
                     agent->info.id + " at " + agent->info.location + " was lost: it " + reason;
      job->lost_agent = agent->info.id;
    }
    job->cancel.store(true);
  }
  changed_.notify_all();
}

std::vector<AgentInfo> Coordinator::Agents() const {
  std::unique_lock lock(mutex_);
  std::vector<AgentInfo> out;
  for (const auto& agent : agents_) out.push_back(agent->info);
  return out;
}

int32_t Coordinator::LiveSlotsLocked() const {
  int32_t slots = 0;
  for (const auto& agent : agents_) slots += agent->info.lost ? 0 : agent->info.slots;
  return slots;
}

// --- Jobs -------------------------------------------------------------------------------------

arrow::Result<std::string> Coordinator::Submit(const JobSubmission& submission) {
  std::string name = submission.name.empty() ? "job" : submission.name;
  if (name.size() > kMaxJobNameBytes) {
    return arrow::Status::Invalid("the job name has ", name.size(), " bytes; at most ",
                                  kMaxJobNameBytes, " are accepted");
  }
  name = SanitizeMessage(name, kMaxJobNameBytes);
  if (submission.memory_budget_bytes != 0 && submission.memory_budget_bytes < (int64_t{1} << 20)) {
    return arrow::Status::Invalid("job '", name, "': the memory budget must be at least 1 MiB, got ",
                                  submission.memory_budget_bytes, " bytes");
  }
  if (submission.state_budget_bytes < 0) {
    return arrow::Status::Invalid("job '", name, "': the state budget must not be negative");
  }
  // The plan, validated whole: its JSON, every rule of LogicalPlan, its execution graph.
  auto plan = PlanFromJson(submission.plan_json);
  if (!plan.ok()) {
    return plan.status().WithMessage("job '", name, "': ", plan.status().message());
  }
  auto graph = ExecutionGraph::Make(*plan);
  if (!graph.ok()) {
    return graph.status().WithMessage("job '", name, "': ", graph.status().message());
  }
  // What cannot cross processes (collect sinks, table sources), and the slots the job needs.
  if (arrow::Status local = CheckDistributedPlan(*plan); !local.ok()) {
    return local.WithMessage("job '", name, "': ", local.message());
  }
  int32_t slots_needed = 1;
  std::string widest;
  for (const auto& op : plan->operators()) {
    if (widest.empty() || op.parallelism > slots_needed) {
      slots_needed = std::max(slots_needed, op.parallelism);
      widest = op.name;
    }
  }
  auto entry = std::make_unique<JobEntry>();
  entry->submission = submission;
  entry->slots_needed = slots_needed;
  entry->plan = std::make_shared<const LogicalPlan>(std::move(*plan));
  entry->info.name = name;
  entry->info.state = JobState::kCreated;
  entry->info.submitted_at = std::chrono::system_clock::now();
  entry->info.plan_json = submission.plan_json;
  entry->info.explain = Explain(*graph);

  std::unique_lock lock(mutex_);
  if (shutting_down_) return arrow::Status::Cancelled("the coordinator is shutting down");
  const int32_t live = LiveSlotsLocked();
  if (live < slots_needed) {
    int32_t agents = 0;
    for (const auto& agent : agents_) agents += agent->info.lost ? 0 : 1;
    return arrow::Status::CapacityError(
        "job '", name, "' needs ", slots_needed, " slots (operator '", widest,
        "' runs ", slots_needed, " tasks; a slot runs one task of each operator) but the "
        "cluster has ", live, " slots on ", agents, " live agents; start more agents or give "
        "them more slots (--slots), or lower the job's parallelism");
  }
  entry->number = next_job_++;
  entry->info.id = "job-" + std::to_string(entry->number);
  const std::string id = entry->info.id;
  SABOT_LOG(kInfo) << "job " << id << " (" << name << ") submitted; it needs " << slots_needed
                   << " slots";
  queue_.push_back(entry->number);
  jobs_[entry->number] = std::move(entry);
  ScheduleLocked();
  TrimHistoryLocked();
  changed_.notify_all();
  return id;
}

void Coordinator::ScheduleLocked() {
  FailUnplaceableLocked();
  while (!queue_.empty() && !shutting_down_) {
    JobEntry* job = jobs_.at(queue_.front()).get();
    // Free slots per live agent, the most free first: the job's slots are spread across agents
    // one at a time, so its tasks land on as many agents as the slots allow.
    std::vector<std::pair<AgentEntry*, int32_t>> free;
    int32_t total = 0;
    // Only agents heard from lately get work: one that missed a few heartbeats (killed, or
    // cut off, but not yet past the agent timeout) would fail the job at once.
    const auto fresh_since = Now() - kFreshHeartbeats * options_.heartbeat_interval;
    for (auto& agent : agents_) {
      const bool usable = !agent->info.lost && agent->last_seen >= fresh_since;
      const int32_t n = usable ? agent->info.slots - agent->info.slots_used : 0;
      if (n > 0) {
        free.emplace_back(agent.get(), n);
        total += n;
      }
    }
    if (total < job->slots_needed) return;  // first come, first served: it waits for slots
    std::stable_sort(free.begin(), free.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    int32_t left = job->slots_needed;
    while (left > 0) {
      for (auto& [agent, n] : free) {
        if (left == 0) break;
        if (n == 0) continue;
        --n;
        --left;
        ++agent->info.slots_used;
        ++job->slots_held[agent->info.id];
      }
    }
    queue_.pop_front();
    job->info.state = JobState::kScheduled;
    job->started = Now();
    StartRunnerLocked(job);
  }
}

void Coordinator::FailUnplaceableLocked() {
  // Submit refuses a job the live cluster cannot hold; agents lost since then may leave a queued
  // job that no longer fits even with every slot free. It would wait forever and, first come
  // first served, hold every job behind it: it fails now, as Submit would have refused it.
  const int32_t live = LiveSlotsLocked();
  int32_t agents = 0;
  for (const auto& agent : agents_) agents += agent->info.lost ? 0 : 1;
  for (auto it = queue_.begin(); it != queue_.end();) {
    JobEntry* job = jobs_.at(*it).get();
    if (job->slots_needed <= live) {
      ++it;
      continue;
    }
    job->info.state = JobState::kFailed;
    job->info.error = arrow::Status::CapacityError(
                          "job ", job->info.id, " (", job->info.name, ") could not be placed: it "
                          "needs ", job->slots_needed, " slots but agents were lost after it was "
                          "accepted and the cluster now has ", live, " slots on ", agents,
                          " live agents")
                          .ToString();
    job->info.finished_at = std::chrono::system_clock::now();
    job->runner_done = true;
    SABOT_LOG(kWarning) << job->info.error;
    it = queue_.erase(it);
    changed_.notify_all();
  }
}

void Coordinator::StartRunnerLocked(JobEntry* job) {
  job->thread = std::thread([this, job] { RunJob(job); });
}

void Coordinator::RunJob(JobEntry* job) {
  std::vector<AgentEndpoint> endpoints;
  DistributedJobOptions options;
  std::shared_ptr<const LogicalPlan> plan;
  {
    std::unique_lock lock(mutex_);
    for (const auto& agent : agents_) {
      auto held = job->slots_held.find(agent->info.id);
      if (held == job->slots_held.end()) continue;
      endpoints.push_back({agent->info.id, agent->info.location, held->second});
    }
    options.job_id = job->info.id;
    options.memory_budget = job->submission.memory_budget_bytes > 0
                                ? job->submission.memory_budget_bytes
                                : options_.default_memory_budget;
    options.state_budget_per_task = job->submission.state_budget_bytes;
    plan = job->plan;
  }
  {
    // Outside the lock: the graph is made from the plan.
    auto graph = ExecutionGraph::Make(*plan);
    const bool recoverable = graph.ok() && CheckLineageRecoverable(*graph).ok();
    std::unique_lock lock(mutex_);
    job->lineage_recoverable = recoverable;
  }
  options.shuffle = options_.shuffle;
  options.client = options_.client;
  options.progress_interval = options_.progress_interval;
  options.agent_timeout = options_.agent_timeout;
  options.cancel = &job->cancel;
  options.on_progress = [this, job](const JobInfo& live) {
    std::unique_lock lock(mutex_);
    if (IsFinal(job->info.state)) return;
    job->info.tasks = live.tasks;
    job->info.operators = live.operators;
    job->info.edges = live.edges;
    job->info.peak_memory_bytes = live.peak_memory_bytes;
    job->info.memory_budget_bytes = live.memory_budget_bytes;
    job->info.recovery = live.recovery;
    if (live.state == JobState::kRestarting) {
      job->info.state = JobState::kRestarting;
    } else if (job->info.state == JobState::kScheduled ||
               job->info.state == JobState::kRestarting) {
      job->info.state = JobState::kRunning;
    }
    changed_.notify_all();
  };
  options.replace_agents = [this, job](const std::vector<std::string>& lost,
                                       int32_t slots_needed) {
    return ReplaceAgents(job, lost, slots_needed);
  };
  arrow::Result<JobReport> result = options_.runner(*plan, endpoints, options);
  if (!result.ok()) {
    // No partial output, not even hidden: what a lost agent's sink tasks left goes.
    if (int removed = RemoveTemporarySinkFiles(*plan, options.job_id); removed > 0) {
      SABOT_LOG(kWarning) << "job " << options.job_id << ": removed " << removed
                          << " temporary sink files its agents could not remove";
    }
  }
  FinishJob(job, result);
}

arrow::Result<std::vector<AgentEndpoint>> Coordinator::ReplaceAgents(
    JobEntry* job, const std::vector<std::string>& lost, int32_t slots_needed) {
  std::unique_lock lock(mutex_);
  std::set<std::string> excluded(lost.begin(), lost.end());
  for (auto& agent : agents_) {
    if (agent->info.lost) excluded.insert(agent->info.id);
  }
  // The slots on agents the job can no longer use go back (to nobody: those agents are gone).
  for (auto it = job->slots_held.begin(); it != job->slots_held.end();) {
    if (excluded.count(it->first) == 0) {
      ++it;
      continue;
    }
    for (auto& agent : agents_) {
      if (agent->info.id == it->first) agent->info.slots_used -= it->second;
    }
    it = job->slots_held.erase(it);
  }
  const auto deadline = Now() + options_.replacement_wait;
  while (true) {
    int32_t held = 0;
    for (const auto& [id, n] : job->slots_held) held += n;
    // Fresh live agents with free slots, the most free first (as ScheduleLocked).
    const auto fresh_since = Now() - kFreshHeartbeats * options_.heartbeat_interval;
    int32_t free_total = 0;
    std::vector<std::pair<AgentEntry*, int32_t>> free;
    for (auto& agent : agents_) {
      if (agent->info.lost || excluded.count(agent->info.id) > 0 ||
          agent->last_seen < fresh_since) {
        continue;
      }
      const int32_t n = agent->info.slots - agent->info.slots_used;
      if (n > 0) {
        free.emplace_back(agent.get(), n);
        free_total += n;
      }
    }
    if (held + free_total >= slots_needed) {
      std::stable_sort(free.begin(), free.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      int32_t left = slots_needed - held;
      while (left > 0) {
        for (auto& [agent, n] : free) {
          if (left == 0) break;
          if (n == 0) continue;
          --n;
          --left;
          ++agent->info.slots_used;
          ++job->slots_held[agent->info.id];
        }
      }
      std::vector<AgentEndpoint> endpoints;
      for (const auto& agent : agents_) {
        auto it = job->slots_held.find(agent->info.id);
        if (it != job->slots_held.end()) {
          endpoints.push_back({agent->info.id, agent->info.location, it->second});
        }
      }
      return endpoints;
    }
    if (job->cancel.load() || shutting_down_) {
      return arrow::Status::Cancelled("job ", job->info.id, " was cancelled while it waited for "
                                      "slots to restart");
    }
    if (Now() >= deadline) {
      return arrow::Status::CapacityError(
          "it needs ", slots_needed, " slots; after ", options_.replacement_wait.count(),
          " ms it holds ", held, " and the live agents have ", free_total,
          " more free (no replacement agent registered)");
    }
    changed_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

void Coordinator::FinishJob(JobEntry* job, const arrow::Result<JobReport>& result) {
  std::unique_lock lock(mutex_);
  JobInfo& info = job->info;
  info.finished_at = std::chrono::system_clock::now();
  info.elapsed = Now() - job->started;
  if (result.ok()) {
    info.state = JobState::kFinished;
    info.operators = result->operators;
    info.edges = result->edges;
    info.peak_memory_bytes = result->peak_memory_bytes;
    info.memory_budget_bytes = result->memory_budget_bytes;
    if (result->wall.count() > 0) info.elapsed = result->wall;
  } else if (!job->failure.empty()) {
    info.state = JobState::kFailed;
    info.error = job->failure;
  } else if (job->cancel_requested && result.status().IsCancelled()) {
    info.state = JobState::kCancelled;
    info.error = job->cancel_reason;
  } else {
    info.state = JobState::kFailed;
    const std::string& message = result.status().message();
    info.error = message.find(info.id) != std::string::npos
                     ? result.status().ToString()
                     : "job " + info.id + " (" + info.name + ") failed: " +
                           result.status().ToString();
  }
  // Tasks that did not end themselves end with the job: those on a lost agent failed with it.
  for (auto& task : info.tasks) {
    if (IsFinal(task.state)) continue;
    if (info.state == JobState::kFinished) {
      task.state = TaskState::kFinished;
    } else if (!job->lost_agent.empty() && task.agent_id == job->lost_agent) {
      task.state = TaskState::kFailed;
      task.error = info.error;
    } else {
      task.state = TaskState::kCancelled;
      task.error = info.error;
    }
  }
  for (auto& agent : agents_) {
    auto held = job->slots_held.find(agent->info.id);
    if (held != job->slots_held.end()) agent->info.slots_used -= held->second;
  }
  job->slots_held.clear();
  job->runner_done = true;
  SABOT_LOG(kInfo) << "job " << info.id << " " << JobStateName(info.state)
                   << (info.error.empty() ? "" : ": ") << info.error;
  ScheduleLocked();
  TrimHistoryLocked();
  changed_.notify_all();
}

arrow::Status Coordinator::Cancel(const std::string& id) {
  std::unique_lock lock(mutex_);
  JobEntry* job = FindJobLocked(id);
  if (job == nullptr) return arrow::Status::KeyError("no job ", QuoteInput(id));
  if (IsFinal(job->info.state)) return arrow::Status::OK();
  if (job->info.state == JobState::kCreated) {
    queue_.erase(std::remove(queue_.begin(), queue_.end(), job->number), queue_.end());
    job->info.state = JobState::kCancelled;
    job->info.error = "cancelled by request before it was scheduled";
    job->info.finished_at = std::chrono::system_clock::now();
    job->runner_done = true;
    // Others behind it in the queue may fit now.
    ScheduleLocked();
  } else if (!job->cancel_requested) {
    job->cancel_requested = true;
    job->cancel_reason = "cancelled by request";
    job->cancel.store(true);
  }
  changed_.notify_all();
  return arrow::Status::OK();
}

Coordinator::JobEntry* Coordinator::FindJobLocked(const std::string& id) const {
  constexpr std::string_view kPrefix = "job-";
  if (!StartsWith(id, kPrefix)) return nullptr;
  int64_t number = 0;
  const char* begin = id.data() + kPrefix.size();
  const char* end = id.data() + id.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc() || ptr != end || begin == end) return nullptr;
  auto it = jobs_.find(number);
  return it == jobs_.end() ? nullptr : it->second.get();
}

JobInfo Coordinator::SnapshotLocked(const JobEntry& job) const {
  JobInfo info = job.info;
  if (info.state == JobState::kScheduled || info.state == JobState::kRunning ||
      info.state == JobState::kRestarting) {
    info.elapsed = Now() - job.started;
  }
  return info;
}

std::vector<JobInfo> Coordinator::Jobs() const {
  std::unique_lock lock(mutex_);
  std::vector<JobInfo> out;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) out.push_back(SnapshotLocked(*it->second));
  return out;
}

arrow::Result<JobInfo> Coordinator::Job(const std::string& id) const {
  std::unique_lock lock(mutex_);
  JobEntry* job = FindJobLocked(id);
  if (job == nullptr) return arrow::Status::KeyError("no job ", QuoteInput(id));
  return SnapshotLocked(*job);
}

arrow::Result<JobInfo> Coordinator::WaitForJob(const std::string& id,
                                               std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    JobEntry* job = FindJobLocked(id);
    if (job == nullptr) return arrow::Status::KeyError("no job ", QuoteInput(id));
    if (IsFinal(job->info.state) ||
        changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      job = FindJobLocked(id);
      if (job == nullptr) return arrow::Status::KeyError("no job ", QuoteInput(id));
      return SnapshotLocked(*job);
    }
  }
}

void Coordinator::TrimHistoryLocked() {
  size_t final_jobs = 0;
  for (const auto& [number, job] : jobs_) final_jobs += IsFinal(job->info.state) ? 1 : 0;
  for (auto it = jobs_.begin();
       final_jobs > static_cast<size_t>(options_.job_history) && it != jobs_.end();) {
    if (IsFinal(it->second->info.state)) {
      // Its runner may still be returning: joined by the next CheckAgents or Shutdown.
      forgotten_.push_back(std::move(it->second));
      it = jobs_.erase(it);
      --final_jobs;
    } else {
      ++it;
    }
  }
}

std::vector<std::thread> Coordinator::TakeEndedThreadsLocked() {
  std::vector<std::thread> ended;
  for (auto& [number, job] : jobs_) {
    if (job->runner_done && job->thread.joinable()) ended.push_back(std::move(job->thread));
  }
  for (auto& job : forgotten_) {
    if (job->thread.joinable()) ended.push_back(std::move(job->thread));
  }
  // A forgotten job's runner has returned from FinishJob's lock but may still be unwinding;
  // joining its thread (outside the lock) waits for that, after which the entry may go.
  return ended;
}

void Coordinator::MonitorLoop() {
  const auto tick = std::max(std::chrono::milliseconds(20), options_.heartbeat_interval / 2);
  std::unique_lock lock(mutex_);
  while (!shutting_down_) {
    changed_.wait_for(lock, tick);
    if (shutting_down_) break;
    lock.unlock();
    CheckAgents();
    lock.lock();
    // Entries of forgotten jobs whose threads were joined above.
    forgotten_.erase(std::remove_if(forgotten_.begin(), forgotten_.end(),
                                    [](const auto& job) { return !job->thread.joinable(); }),
                     forgotten_.end());
  }
}

// --- Control actions --------------------------------------------------------------------------

arrow::Result<std::string> Coordinator::HandleAction(std::string_view type,
                                                     const std::string& body) {
  ARROW_ASSIGN_OR_RAISE(auto request, ControlMessage::Decode(body));
  ControlMessage reply;
  if (type == kActionRegisterAgent) {
    AgentRegistrationRequest registration;
    ARROW_ASSIGN_OR_RAISE(registration.location, request.Get("location"));
    ARROW_ASSIGN_OR_RAISE(int64_t slots, request.GetInt("slots"));
    if (slots < 1 || slots > kMaxSlotsPerAgent) {
      return arrow::Status::Invalid("register_agent: slots must be between 1 and ",
                                    kMaxSlotsPerAgent, ", got ", slots);
    }
    registration.slots = static_cast<int32_t>(slots);
    if (request.Has("name")) {
      ARROW_ASSIGN_OR_RAISE(registration.name, request.Get("name"));
    }
    ARROW_ASSIGN_OR_RAISE(registration.memory_budget_bytes, request.GetInt("memory_budget_bytes"));
    ARROW_ASSIGN_OR_RAISE(registration.memory_used_bytes, request.GetInt("memory_used_bytes"));
    ARROW_ASSIGN_OR_RAISE(auto registered, RegisterAgent(registration));
    reply.Set("agent_id", registered.agent_id);
    reply.SetInt("heartbeat_interval_ms", registered.heartbeat_interval.count());
    reply.SetInt("agent_timeout_ms", registered.agent_timeout.count());
  } else if (type == kActionHeartbeat) {
    ARROW_ASSIGN_OR_RAISE(auto id, request.Get("agent_id"));
    ARROW_ASSIGN_OR_RAISE(int64_t budget, request.GetInt("memory_budget_bytes"));
    ARROW_ASSIGN_OR_RAISE(int64_t used, request.GetInt("memory_used_bytes"));
    reply.Set("status", Heartbeat(id, budget, used) ? "ok" : "unknown");
  } else if (type == kActionSubmitJob) {
    JobSubmission submission;
    ARROW_ASSIGN_OR_RAISE(auto plan, request.GetBytes("plan"));
    submission.plan_json = plan->ToString();
    if (request.Has("name")) {
      ARROW_ASSIGN_OR_RAISE(submission.name, request.Get("name"));
    }
    if (request.Has("memory_budget_bytes")) {
      ARROW_ASSIGN_OR_RAISE(submission.memory_budget_bytes, request.GetInt("memory_budget_bytes"));
    }
    if (request.Has("state_budget_bytes")) {
      ARROW_ASSIGN_OR_RAISE(submission.state_budget_bytes, request.GetInt("state_budget_bytes"));
    }
    ARROW_ASSIGN_OR_RAISE(auto id, Submit(submission));
    reply.Set("job_id", id);
  } else if (type == kActionListJobs) {
    reply.SetBytes("jobs", *arrow::Buffer::FromString(JobInfosToJson(Jobs(), false)));
  } else if (type == kActionGetJob) {
    ARROW_ASSIGN_OR_RAISE(auto id, request.Get("job_id"));
    ARROW_ASSIGN_OR_RAISE(auto job, Job(id));
    reply.SetBytes("job", *arrow::Buffer::FromString(JobInfoToJson(job, true)));
  } else if (type == kActionCancelJob) {
    ARROW_ASSIGN_OR_RAISE(auto id, request.Get("job_id"));
    ARROW_RETURN_NOT_OK(Cancel(id));
    ARROW_ASSIGN_OR_RAISE(auto job, Job(id));
    reply.Set("job_id", id);
    reply.Set("state", std::string(JobStateName(job.state)));
  } else if (type == kActionListAgents) {
    reply.SetBytes("agents", *arrow::Buffer::FromString(AgentInfosToJson(Agents())));
  } else {
    return arrow::Status::NotImplemented(
        "unknown action ", QuoteInput(type), " (the coordinator answers ",
        kActionRegisterAgent, ", ", kActionHeartbeat, ", ", kActionSubmitJob, ", ",
        kActionListJobs, ", ", kActionGetJob, ", ", kActionCancelJob, ", ", kActionListAgents,
        ")");
  }
  return reply.Encode();
}

// --- Shutdown ---------------------------------------------------------------------------------

arrow::Status Coordinator::Shutdown() {
  std::unique_lock shutdown_lock(shutdown_mutex_);
  if (shut_down_) return arrow::Status::OK();
  shut_down_ = true;
  {
    std::unique_lock lock(mutex_);
    shutting_down_ = true;
    changed_.notify_all();
  }
  arrow::Status status;
  // No new control actions from here on; calls in progress end first.
  if (server_) {
    status = server_->Shutdown();
    server_.reset();
  }
  if (monitor_.joinable()) monitor_.join();
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(mutex_);
    for (auto& [number, job] : jobs_) {
      if (job->info.state == JobState::kCreated) {
        job->info.state = JobState::kCancelled;
        job->info.error = "the coordinator shut down before the job was scheduled";
        job->info.finished_at = std::chrono::system_clock::now();
        job->runner_done = true;
      } else if (!IsFinal(job->info.state) && !job->cancel_requested) {
        job->cancel_requested = true;
        job->cancel_reason = "cancelled: the coordinator shut down";
        job->cancel.store(true);
      }
      if (job->thread.joinable()) threads.push_back(std::move(job->thread));
    }
    queue_.clear();
    for (auto& job : forgotten_) {
      if (job->thread.joinable()) threads.push_back(std::move(job->thread));
    }
    changed_.notify_all();
  }
  for (auto& thread : threads) thread.join();
  std::unique_lock lock(mutex_);
  forgotten_.clear();
  return status;
}

}  // namespace sabot
