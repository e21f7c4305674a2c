#include "sabot/runtime/agent.h"

#include <algorithm>
#include <set>
#include "sabot/common/process_memory.h"

#include "sabot/common/logging.h"
#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/dataflow/task_runner.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/distributed_job.h"
#include "sabot/runtime/lineage_recovery.h"

namespace sabot {

arrow::Result<std::unique_ptr<Agent>> Agent::Make(EngineOptions options,
                                                  AgentJobOptions agent_options) {
  if (agent_options.job_timeout.count() <= 0) {
    return arrow::Status::Invalid("the agent's job timeout must be positive, got ",
                                  agent_options.job_timeout.count(), " ms");
  }
  options.mode = EngineMode::kDistributed;
  std::unique_ptr<Agent> agent(new Agent());
  agent->agent_options_ = agent_options;
  Agent* self = agent.get();
  options.server.actions = [self](std::string_view type,
                                   const std::string& body) -> arrow::Result<std::string> {
    auto reply = self->HandleAction(type, body);
    // The message already names shuffle, partition and agent; the job manager gets it as is.
    if (!reply.ok()) return arrow::Status(reply.status().code(), reply.status().message());
    return reply;
  };
  ARROW_ASSIGN_OR_RAISE(agent->engine_, Engine::Make(std::move(options)));
  agent->last_action_nanos_.store(std::chrono::steady_clock::now().time_since_epoch().count());
  agent->ready_.store(true);
  agent->watcher_ = std::thread([self] { self->WatchJobs(); });
  return agent;
}

namespace {

// How long the destructor waits for cancelled task calls to return before it releases their
// shuffles anyway.
constexpr auto kTaskDrainTimeout = std::chrono::seconds(10);

}  // namespace

Agent::~Agent() {
  Shutdown();
  if (watcher_.joinable()) watcher_.join();
  // Tasks still running (a signal or a lost job manager stops the agent mid-job) end at once
  // when cancelled; their shuffles are released only after their calls returned, so no writer
  // or reader is torn down under a running task.
  CancelAll(arrow::Status::Cancelled("the agent is shutting down"));
  {
    std::unique_lock<std::mutex> lock(mutex_);
    tasks_done_.wait_for(lock, kTaskDrainTimeout, [&] { return running_tasks_ == 0; });
  }
  // Dataflow jobs still deployed: their task groups fail, end their tasks (removing what they
  // did not commit) and go before the shuffles they use.
  std::map<std::string, std::shared_ptr<JobRun>> jobs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs.swap(jobs_);
  }
  jobs.clear();
  // Releasing the shuffles deletes their spill files; then the server stops before the handlers
  // it calls go away.
  if (engine_) (void)engine_->Shutdown();
}

void Agent::CancelAll(const arrow::Status& reason) {
  std::vector<std::shared_ptr<RunState>> states;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, state] : states_) states.push_back(state);
  }
  // Outside the agent's lock: cancelling calls into the tasks' writers and readers.
  for (const auto& state : states) state->cancellation.Cancel(reason);
}

void Agent::Stop(const arrow::Status& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_reason_.ok() && !shutdown_) stop_reason_ = reason;
  }
  CancelAll(reason);
  Shutdown();
}

arrow::Status Agent::stop_reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stop_reason_;
}

std::chrono::steady_clock::time_point Agent::last_control_action() const {
  return std::chrono::steady_clock::time_point(
      std::chrono::steady_clock::duration(last_action_nanos_.load()));
}

void Agent::WaitForShutdown() {
  std::unique_lock<std::mutex> lock(mutex_);
  shutdown_cv_.wait(lock, [&] { return shutdown_; });
}

void Agent::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutdown_ = true;
  }
  shutdown_cv_.notify_all();
}

std::shared_ptr<Agent::RunState> Agent::StateOf(const ShuffleId& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = states_.find(id);
  return it == states_.end() ? nullptr : it->second;
}

void Agent::SetFunctionProvider(FunctionProvider provider) {
  std::lock_guard<std::mutex> lock(mutex_);
  function_provider_ = std::move(provider);
}

arrow::Result<std::string> Agent::HandleAction(std::string_view type, const std::string& body) {
  if (!ready_.load()) {
    return arrow::Status::IOError("the agent is still starting; try again");
  }
  last_action_nanos_.store(std::chrono::steady_clock::now().time_since_epoch().count());
  ARROW_ASSIGN_OR_RAISE(ControlMessage request, ControlMessage::Decode(body));
  if (type == kActionRegisterShuffle) return RegisterShuffle(request);
  if (type == kActionRunWriters) return RunTasks(request, /*writers=*/true);
  if (type == kActionRunReaders) return RunTasks(request, /*writers=*/false);
  if (type == kActionProgress) return Progress(request);
  if (type == kActionCancelShuffle) return CancelShuffle(request);
  if (type == kActionReleaseJob) return ReleaseJob(request);
  if (type == kActionDeployTasks) return DeployTasks(request);
  if (type == kActionJobStatus) return JobStatus(request);
  if (type == kActionCommitJob) return CommitJob(request);
  if (type == kActionAbortJob) return AbortJob(request);
  if (type == kActionRelocateWriters) return RelocateWriters(request);
  if (type == kActionTriggerCheckpoint) return TriggerCheckpoint(request);
  if (type == kActionCheckpointComplete) return CheckpointComplete(request);
  ShuffleManager* manager = engine_->shuffle_manager();
  if (type == kActionShuffleStats) {
    ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
    ARROW_RETURN_NOT_OK(ValidateId(id, "shuffle id"));
    ARROW_ASSIGN_OR_RAISE(ShuffleStats stats, manager->Stats(id));
    ControlMessage reply;
    PutShuffleStats(stats, &reply);
    // This agent's memory, to compare with its budget: the budget pool's peak and the
    // process's peak resident memory (everything, inside the budget or not).
    reply.SetInt("memory_budget_bytes", manager->pool()->budget());
    reply.SetInt("peak_budget_bytes", manager->pool()->peak_bytes());
    reply.SetInt("peak_rss_bytes", PeakResidentBytes());
    return reply.Encode();
  }
  if (type == kActionShutdown) {
    Shutdown();
    return std::string();
  }
  return arrow::Status::NotImplemented("unknown control action ", QuoteInput(type));
}

arrow::Result<std::string> Agent::RegisterShuffle(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(auto bytes, request.GetBytes("descriptor"));
  ARROW_ASSIGN_OR_RAISE(ShuffleDescriptor descriptor, ShuffleDescriptor::Deserialize(*bytes));
  std::string job_id = request.Has("job_id") ? request.Get("job_id").ValueOrDie() : "";
  if (!job_id.empty()) ARROW_RETURN_NOT_OK(ValidateId(job_id, "job id"));
  ARROW_RETURN_NOT_OK(engine_->shuffle_manager()->RegisterShuffle(descriptor, job_id));
  std::lock_guard<std::mutex> lock(mutex_);
  // A repeated registration (the manager accepts the same descriptor again) keeps the state its
  // running tasks use; one after a cancelled run starts afresh.
  auto& state = states_[descriptor.shuffle_id];
  if (state == nullptr || state->cancellation.cancelled()) state = std::make_shared<RunState>();
  state->job_id = job_id;
  return std::string();
}

arrow::Result<std::pair<std::vector<int32_t>, std::vector<WriterLocation>>> CheckRunRequest(
    const ControlMessage& request, const ShuffleDescriptor& descriptor, const GeneratedJob& job,
    const std::vector<int64_t>& tasks, bool writers) {
  const std::string& id = descriptor.shuffle_id;
  if (job.num_writers != descriptor.num_writers) {
    return arrow::Status::Invalid("the job has ", job.num_writers, " writers but shuffle '", id,
                                  "' was registered with ", descriptor.num_writers);
  }
  auto schema = GeneratedSchema(job.data);
  if (!schema->Equals(*descriptor.schema)) {
    // On one line: a message is printable ASCII without line breaks (fuzz_control_message).
    auto fields = [](const arrow::Schema& of) {
      std::string text;
      for (const auto& field : of.fields()) {
        text += (text.empty() ? "" : ", ") + field->name() + ": " + field->type()->ToString();
      }
      return QuoteInput("(" + text + ")");
    };
    return arrow::Status::Invalid("the job's table ", fields(*schema), " is not shuffle '", id,
                                  "''s schema ", fields(*descriptor.schema));
  }
  // Each task (a writer task or a partition) once, and within the shuffle's range.
  const int32_t limit = writers ? descriptor.num_writers : descriptor.num_partitions();
  std::vector<int32_t> checked;
  std::set<int64_t> seen;
  for (int64_t task : tasks) {
    if (task < 0 || task >= limit) {
      return arrow::Status::IndexError(writers ? "writer task " : "partition ", task,
                                       " is out of range: shuffle '", id, "' has ", limit,
                                       writers ? " writers" : " partitions");
    }
    if (!seen.insert(task).second) {
      return arrow::Status::Invalid("task ", task, " appears twice in the request");
    }
    checked.push_back(static_cast<int32_t>(task));
  }
  std::vector<WriterLocation> upstream;
  if (!writers) {
    ARROW_ASSIGN_OR_RAISE(upstream, GetWriterLocations(request));
    std::set<int32_t> writers_seen;
    for (const auto& location : upstream) {
      ARROW_RETURN_NOT_OK(descriptor.CheckWriterTask(location.writer_task));
      if (!writers_seen.insert(location.writer_task).second) {
        return arrow::Status::Invalid("writer task ", location.writer_task,
                                      " appears twice in the upstream locations");
      }
    }
  }
  return std::make_pair(std::move(checked), std::move(upstream));
}

arrow::Result<std::string> Agent::RunTasks(const ControlMessage& request, bool writers) {
  ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
  ARROW_RETURN_NOT_OK(ValidateId(id, "shuffle id"));
  ARROW_ASSIGN_OR_RAISE(GeneratedJob job, GetGeneratedJob(request));
  ARROW_ASSIGN_OR_RAISE(std::vector<int64_t> tasks, request.GetInts("tasks"));
  ShuffleManager* manager = engine_->shuffle_manager();
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager->GetShuffle(id));
  // Every size of the request is checked against the registered shuffle before anything is
  // allocated for it (the check's state below grows with writers times partitions).
  ARROW_ASSIGN_OR_RAISE(auto tasks_and_upstream,
                        CheckRunRequest(request, *descriptor, job, tasks, writers));
  ARROW_ASSIGN_OR_RAISE(auto check, GeneratedShuffleCheck::Make(job, descriptor->spec));

  std::vector<TaskIndex> writer_tasks;
  std::vector<PartitionId> partitions;
  std::vector<WriterLocation> upstream = std::move(tasks_and_upstream.second);
  (writers ? writer_tasks : partitions) = std::move(tasks_and_upstream.first);
  auto state = StateOf(id);
  if (state == nullptr) {
    return arrow::Status::Invalid("shuffle '", id, "' is not registered on this agent");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A stopping agent starts nothing; the destructor waits for the calls counted here.
    if (shutdown_) {
      return arrow::Status::Cancelled("agent '", engine_->shuffle_manager()->options().agent_id,
                                      "' is shutting down");
    }
    ++running_tasks_;
  }
  auto run = RunGeneratedShuffle(manager, id, job, writer_tasks, partitions, upstream,
                                 check.get(), &state->progress, &state->cancellation);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_tasks_;
  }
  tasks_done_.notify_all();
  ARROW_ASSIGN_OR_RAISE(ShuffleRunReport report, std::move(run));
  ControlMessage reply;
  reply.SetInt("rows_written", report.rows_written);
  reply.SetInt("bytes_written", report.bytes_written);
  reply.SetInt("elapsed_ns", report.elapsed.count());
  if (!writers) {
    reply.SetInts("partition_rows", report.partition_rows);
    reply.SetInts("counts", check->counts());
  }
  return reply.Encode();
}

arrow::Result<std::string> Agent::Progress(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
  ARROW_RETURN_NOT_OK(ValidateId(id, "shuffle id"));
  auto state = StateOf(id);
  ControlMessage reply;
  reply.SetInt("rows_written", state ? state->progress.rows_written.load() : 0);
  reply.SetInt("rows_read", state ? state->progress.rows_read.load() : 0);
  return reply.Encode();
}

arrow::Result<std::string> Agent::CancelShuffle(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
  ARROW_RETURN_NOT_OK(ValidateId(id, "shuffle id"));
  std::string reason = request.Has("reason") ? request.Get("reason").ValueOrDie() : "";
  if (reason.empty()) reason = "the job manager cancelled the shuffle";
  // An unknown shuffle (never registered here, or released) has nothing to cancel.
  if (auto state = StateOf(id)) state->cancellation.Cancel(arrow::Status::Cancelled(reason));
  return std::string();
}

std::shared_ptr<Agent::JobRun> Agent::HoldJob(const std::string& job_id) {
  std::shared_ptr<JobRun> run;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return nullptr;
    run = it->second;
    ++run->calls;
    run->last_contact = std::chrono::steady_clock::now();
  }
  // The caller's pointer ends the hold when dropped; it keeps the run alive as the plain one.
  JobRun* raw = run.get();
  return std::shared_ptr<JobRun>(raw, [this, run = std::move(run)](JobRun*) { Unhold(run.get()); });
}

void Agent::Unhold(JobRun* run) {
  std::lock_guard<std::mutex> lock(mutex_);
  --run->calls;
  run->last_contact = std::chrono::steady_clock::now();
}

int64_t Agent::ReleaseShuffles(const std::string& job_id) {
  const int64_t released = engine_->shuffle_manager()->ReleaseJob(job_id);
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(states_, [&](const auto& entry) { return entry.second->job_id == job_id; });
  return released;
}

void Agent::WatchJobs() {
  const auto timeout = agent_options_.job_timeout;
  // Checked a few times per timeout, at least once a second.
  const auto period = std::min<std::chrono::steady_clock::duration>(
      std::max<std::chrono::steady_clock::duration>(timeout / 4, std::chrono::milliseconds(1)),
      std::chrono::seconds(1));
  const std::string agent = engine_->shuffle_manager()->options().agent_id;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!shutdown_cv_.wait_for(lock, period, [&] { return shutdown_; })) {
    // Claimed under the lock: out of jobs_, so no new call can hold them and a late driver
    // gets "not deployed".
    std::vector<std::pair<std::string, std::shared_ptr<JobRun>>> expired;
    const auto now = std::chrono::steady_clock::now();
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->second->calls == 0 && now - it->second->last_contact > timeout) {
        expired.emplace_back(it->first, std::move(it->second));
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    if (expired.empty()) continue;
    lock.unlock();
    for (const auto& [job_id, run] : expired) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
      SABOT_LOG(kWarning) << "agent '" << agent << "': no control call about job '" << job_id
                          << "' for " << ms << " ms (--job-timeout): its driver is gone; "
                          << "aborting and releasing the job";
      ExpireJob(job_id, run,
                arrow::Status::Cancelled("agent '", agent, "' gave up job '", job_id,
                                         "': no control call from its driver for ", ms, " ms"));
    }
    expired.clear();
    lock.lock();
  }
}

void Agent::ExpireJob(const std::string& job_id, const std::shared_ptr<JobRun>& run,
                      const arrow::Status& cause) {
  // As AbortJob then ReleaseJob: the tasks end at their next step, their uncommitted output
  // goes, then the job's shuffles (memory and spill files).
  if (run->group != nullptr) {
    const auto groups = GroupsOf(run.get());
    for (const auto& [group, tasks] : groups) group->Fail(cause);
    for (const auto& [group, tasks] : groups) {
      if (group->WaitFor(kTaskDrainTimeout)) group->Abort(cause);
    }
  }
  (void)ReleaseShuffles(job_id);
}

arrow::Result<std::string> Agent::ReleaseJob(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string job_id, request.Get("job_id"));
  ARROW_RETURN_NOT_OK(ValidateId(job_id, "job id"));
  // A dataflow job's tasks go first (what they did not commit is removed), then its shuffles.
  std::shared_ptr<JobRun> run;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = jobs_.find(job_id);
    if (it != jobs_.end()) {
      run = std::move(it->second);
      jobs_.erase(it);
    }
  }
  run.reset();
  ControlMessage reply;
  reply.SetInt("released", ReleaseShuffles(job_id));
  return reply.Encode();
}

std::shared_ptr<Agent::JobRun> Agent::JobOf(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second;
}


arrow::Result<std::string> Agent::DeployTasks(const ControlMessage& request) {
  ShuffleManager* manager = engine_->shuffle_manager();
  const std::string& agent = manager->options().agent_id;
  // Every field is checked (sizes, indices) before anything is made for the job.
  ARROW_ASSIGN_OR_RAISE(TaskDeployment deployment, GetTaskDeployment(request));
  const std::string& job_id = deployment.job_id;
  if (job_id.size() > kMaxJobIdLength) {
    return arrow::Status::Invalid("job id ", QuoteInput(job_id), " is longer than ",
                                  kMaxJobIdLength, " characters");
  }
  if (auto deployed = HoldJob(job_id)) {
    // Lineage recovery: re-run attempts join the job deployed here.
    if (!deployment.task_attempts.empty()) return DeployRerun(deployment, deployed);
    return arrow::Status::AlreadyExists("job '", job_id, "' is deployed on agent '", agent,
                                        "' already");
  }
  ARROW_ASSIGN_OR_RAISE(LogicalPlan plan, PlanFromJson(deployment.plan_json));
  ARROW_RETURN_NOT_OK(CheckDistributedPlan(plan));
  {
    // The placement's size is checked against the plan's graph before binding, which opens
    // files and creates sink directories.
    ARROW_ASSIGN_OR_RAISE(ExecutionGraph graph, ExecutionGraph::Make(plan));
    if (deployment.task_agents.size() != graph.tasks().size()) {
      return arrow::Status::Invalid("the deployment places ", deployment.task_agents.size(),
                                    " tasks; job '", job_id, "' has ", graph.tasks().size());
    }
  }
  const int64_t agent_budget = manager->pool()->budget();
  const int64_t budget = deployment.memory_budget > 0 ? deployment.memory_budget : agent_budget;
  if (budget > agent_budget) {
    return arrow::Status::Invalid("job '", job_id, "' asks for a memory budget of ", budget,
                                  " bytes; agent '", agent, "' has ", agent_budget);
  }
  BindOptions bind;
  bind.job_id = job_id;
  bind.memory_budget = budget;
  FunctionProvider provider;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    provider = function_provider_;
  }
  if (provider) {
    ARROW_ASSIGN_OR_RAISE(bind.functions, provider(plan));
  }
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<const BoundJob> bound,
                        BindJob(plan, bind, deployment.shuffle));
  const ExecutionGraph& graph = bound->graph;
  if (deployment.task_agents.size() != graph.tasks().size()) {
    return arrow::Status::Invalid("the deployment places ", deployment.task_agents.size(),
                                  " tasks; job '", job_id, "' has ", graph.tasks().size());
  }
  // The job's pipelined channels need their network segments from this agent's pool.
  const int64_t network_bytes =
      manager->network()->total_segments() * manager->network()->segment_size();
  const int64_t needed = static_cast<int64_t>(bound->network_fraction * budget);
  if (needed > network_bytes) {
    return arrow::Status::OutOfMemory(
        "job '", job_id, "' needs ", needed, " bytes of network buffers for its channels; agent '",
        agent, "' has ", network_bytes, ": raise its memory budget or lower the parallelism");
  }
  // Where every writer task of every shuffle runs.
  std::map<std::pair<int32_t, int32_t>, size_t> task_index;
  for (size_t t = 0; t < graph.tasks().size(); ++t) {
    task_index[{graph.tasks()[t].chain, graph.tasks()[t].subtask}] = t;
  }
  TaskGroupOptions options;
  options.threads = deployment.threads;
  options.state = TaskStateLimits{deployment.state_budget_per_task,
                                  manager->options().spill.directory};
  options.stall_timeout = std::chrono::milliseconds(deployment.stall_timeout_ms);
  for (size_t e : graph.shuffle_edges()) {
    const GraphEdge& edge = graph.edges()[e];
    std::vector<std::string> locations;
    for (int32_t w = 0; w < edge.num_writers; ++w) {
      const size_t t = task_index.at({edge.from_chain, w});
      locations.push_back(deployment.agents[deployment.task_agents[t]]);
    }
    options.writer_locations.push_back(std::move(locations));
  }
  std::vector<GroupTask> tasks;
  for (int64_t t : deployment.tasks) {
    const int32_t attempt =
        deployment.task_attempts.empty() ? 0 : static_cast<int32_t>(deployment.task_attempts[t]);
    tasks.push_back({graph.tasks()[t].chain, graph.tasks()[t].subtask, attempt});
  }
  std::shared_ptr<CheckpointAcks> checkpoints;
  if (!deployment.checkpoint_job.empty()) {
    // Opened before anything is registered: a directory that cannot be reached refuses the job.
    auto storage = CheckpointStorage::Open(deployment.checkpoint_directory,
                                           deployment.checkpoint_job,
                                           deployment.checkpoint_retained);
    if (!storage.ok()) {
      return storage.status().WithMessage("job '", job_id, "' on agent '", agent,
                                          "': cannot open its checkpoints: ",
                                          storage.status().message());
    }
    options.checkpoint_storage = *storage;
    if (deployment.restore_checkpoint != kNoCheckpoint) {
      // The driver chose the newest checkpoint that verifies; this agent reads the same one.
      ARROW_ASSIGN_OR_RAISE(auto latest, (*storage)->LatestValid());
      if (!latest || latest->id != deployment.restore_checkpoint) {
        return arrow::Status::IOError(
            "job '", job_id, "' on agent '", agent, "' is to restore checkpoint ",
            deployment.restore_checkpoint, " but the newest valid checkpoint there is ",
            latest ? std::to_string(latest->id) : std::string("none"),
            " (does the agent see the driver's checkpoint directory '",
            deployment.checkpoint_directory, "'?)");
      }
      options.restore_from = std::move(*latest);
    }
    checkpoints = std::make_shared<CheckpointAcks>();
    options.on_task_snapshot = [checkpoints, task_index](
                                   CheckpointId id, const arrow::Result<TaskSnapshot>& snapshot) {
      SnapshotAck ack;
      ack.id = id;
      if (snapshot.ok()) {
        auto it = task_index.find({snapshot->chain, snapshot->subtask});
        if (it == task_index.end()) return;
        ack.task = static_cast<int64_t>(it->second);
        ack.finished = snapshot->finished;
        for (const SnapshotFile& file : snapshot->files) {
          ack.files.push_back({file.path, file.bytes, file.crc32c});
        }
      } else {
        // The error names the task; the driver fails the checkpoint whichever task it was.
        ack.error = snapshot.status();
      }
      std::lock_guard<std::mutex> lock(checkpoints->mutex);
      if (id > checkpoints->completed) checkpoints->acks.push_back(std::move(ack));
    };
  }
  for (const ShuffleDescriptor& descriptor : bound->shuffles) {
    arrow::Status registered = manager->RegisterShuffle(descriptor, job_id);
    // Lineage recovery: the job's reads of stored streams survive a lost writer agent.
    if (registered.ok() && deployment.lineage) {
      registered = manager->EnableRecovery(descriptor.shuffle_id);
    }
    if (!registered.ok()) {
      (void)manager->ReleaseJob(job_id);
      return registered;
    }
  }
  if (arrow::Status relocated = ApplyWriterRelocations(manager, job_id, graph, deployment);
      !relocated.ok()) {
    (void)manager->ReleaseJob(job_id);
    return relocated;
  }
  auto run = std::make_shared<JobRun>();
  run->bound = bound;
  run->tasks = deployment.tasks;
  run->checkpoints = checkpoints;
  // The deployment holds the job until its tasks started (no expiry while they open).
  run->calls = 1;
  run->last_contact = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutdown_) {
      (void)manager->ReleaseJob(job_id);
      return arrow::Status::Cancelled("agent '", agent, "' is shutting down");
    }
    // Claimed before the tasks open, so a second deployment of the job is refused.
    if (!jobs_.emplace(job_id, run).second) {
      return arrow::Status::AlreadyExists("job '", job_id, "' is deployed on agent '", agent,
                                          "' already");
    }
  }
  auto group = TaskGroup::Open(bound, manager, std::move(tasks), std::move(options));
  if (!group.ok()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.erase(job_id);
    }
    (void)manager->ReleaseJob(job_id);
    return group.status();
  }
  run->group = std::move(*group);
  run->group->Start();
  Unhold(run.get());
  ControlMessage reply;
  reply.SetInt("tasks", static_cast<int64_t>(deployment.tasks.size()));
  return reply.Encode();
}

arrow::Result<std::string> Agent::JobStatus(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string job_id, request.Get("job_id"));
  ARROW_RETURN_NOT_OK(ValidateId(job_id, "job id"));
  auto run = HoldJob(job_id);
  if (run == nullptr || run->group == nullptr) {
    return arrow::Status::KeyError("job '", job_id, "' is not deployed on agent '",
                                   engine_->shuffle_manager()->options().agent_id, "'");
  }
  TaskGroupFigures figures = run->group->Figures();
  JobStatusReport report;
  report.done = run->group->done();
  report.busy = run->group->busy();
  report.signature = run->group->Signature();
  report.failure = run->group->failure();
  for (size_t t = 0; t < figures.tasks.size(); ++t) {
    const GroupTaskStatus& task = figures.tasks[t];
    report.task_index.push_back(run->tasks[t]);
    report.task_finished.push_back(task.finished ? 1 : 0);
    report.task_rows_in.push_back(task.rows_in);
    report.task_rows_out.push_back(task.rows_out);
    if (task.failed && report.failed_task < 0) report.failed_task = run->tasks[t];
  }
  // Lineage recovery: the re-run attempts' groups count as the job's too.
  for (const auto& [group, tasks] : GroupsOf(run.get())) {
    if (group == run->group.get()) continue;
    AddRerunStatus(*group, *tasks, &report, &figures);
  }
  report.operators = std::move(figures.operators);
  report.operator_tasks.assign(figures.operator_tasks.begin(), figures.operator_tasks.end());
  report.edges = std::move(figures.edges);
  report.peak_memory_bytes = figures.peak_memory_bytes;
  report.memory_budget_bytes = figures.memory_budget_bytes;
  report.peak_rss_bytes = PeakResidentBytes();
  if (run->checkpoints != nullptr) {
    std::lock_guard<std::mutex> lock(run->checkpoints->mutex);
    report.snapshots = run->checkpoints->acks;
  }
  ControlMessage reply;
  PutJobStatus(report, &reply);
  return reply.Encode();
}

arrow::Result<std::string> Agent::CommitJob(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string job_id, request.Get("job_id"));
  ARROW_RETURN_NOT_OK(ValidateId(job_id, "job id"));
  ARROW_ASSIGN_OR_RAISE(int64_t phase, request.GetInt("phase"));
  if (phase < 0 || phase >= TaskRunner::kCommitPhases) {
    return arrow::Status::IndexError("commit phase ", phase, " is out of range (0 to ",
                                     TaskRunner::kCommitPhases - 1, ")");
  }
  auto run = HoldJob(job_id);
  if (run == nullptr || run->group == nullptr) {
    return arrow::Status::KeyError("job '", job_id, "' is not deployed on agent '",
                                   engine_->shuffle_manager()->options().agent_id, "'");
  }
  for (const auto& [group, tasks] : GroupsOf(run.get())) {
    // Lineage recovery commits a job again once re-run attempts joined it: each group commits
    // each phase once (a file part is renamed once).
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto done = run->committed_phases.find(group);
      if (done != run->committed_phases.end() && done->second >= phase) continue;
    }
    ARROW_RETURN_NOT_OK(group->Commit(static_cast<int>(phase)));
    std::lock_guard<std::mutex> lock(mutex_);
    run->committed_phases[group] = phase;
  }
  return std::string();
}

arrow::Result<std::string> Agent::AbortJob(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string job_id, request.Get("job_id"));
  ARROW_RETURN_NOT_OK(ValidateId(job_id, "job id"));
  std::string reason = request.Has("reason") ? request.Get("reason").ValueOrDie() : "";
  if (reason.empty()) reason = "the job manager aborted job '" + job_id + "'";
  auto run = HoldJob(job_id);
  // An unknown job (never deployed here, or released) has nothing to abort.
  if (run == nullptr || run->group == nullptr) return std::string();
  const arrow::Status cause = arrow::Status::Cancelled(reason);
  const auto groups = GroupsOf(run.get());
  for (const auto& [group, tasks] : groups) group->Fail(cause);
  // The tasks end at their next step (nothing they wait for holds them); then their output goes.
  for (const auto& [group, tasks] : groups) {
    if (group->WaitFor(kTaskDrainTimeout)) group->Abort(cause);
  }
  return std::string();
}

namespace {

arrow::Result<std::pair<std::string, CheckpointId>> CheckpointRequest(
    const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string job_id, request.Get("job_id"));
  ARROW_RETURN_NOT_OK(ValidateId(job_id, "job id"));
  ARROW_ASSIGN_OR_RAISE(CheckpointId id, request.GetInt("checkpoint_id"));
  if (id <= kNoCheckpoint) {
    return arrow::Status::Invalid("checkpoint id ", id, " of job '", job_id,
                                  "' is not positive");
  }
  return std::make_pair(std::move(job_id), id);
}

}  // namespace

arrow::Result<std::pair<std::shared_ptr<Agent::JobRun>, CheckpointId>> Agent::CheckpointedJob(
    const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(auto named, CheckpointRequest(request));
  auto run = HoldJob(named.first);
  if (run == nullptr || run->group == nullptr) {
    return arrow::Status::KeyError("job '", named.first, "' is not deployed on agent '",
                                   engine_->shuffle_manager()->options().agent_id, "'");
  }
  if (run->checkpoints == nullptr) {
    return arrow::Status::Invalid("job '", named.first, "' was deployed on agent '",
                                  engine_->shuffle_manager()->options().agent_id,
                                  "' without checkpoints");
  }
  return std::make_pair(std::move(run), named.second);
}

arrow::Result<std::string> Agent::TriggerCheckpoint(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(auto job, CheckpointedJob(request));
  job.first->group->TriggerCheckpoint(job.second);
  return std::string();
}

arrow::Result<std::string> Agent::CheckpointComplete(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(auto job, CheckpointedJob(request));
  const std::shared_ptr<JobRun>& run = job.first;
  const CheckpointId id = job.second;
  {
    std::lock_guard<std::mutex> lock(run->checkpoints->mutex);
    CheckpointAcks& acks = *run->checkpoints;
    acks.completed = std::max(acks.completed, id);
    std::erase_if(acks.acks, [&](const SnapshotAck& ack) { return ack.id <= acks.completed; });
  }
  run->group->CheckpointComplete(id);
  return std::string();
}

}  // namespace sabot
