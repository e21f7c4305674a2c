#include "sabot/runtime/agent.h"

#include "sabot/common/process_memory.h"

#include "sabot/common/logging.h"
#include "sabot/runtime/control_actions.h"

namespace sabot {

arrow::Result<std::unique_ptr<Agent>> Agent::Make(EngineOptions options) {
  options.mode = EngineMode::kDistributed;
  std::unique_ptr<Agent> agent(new Agent());
  Agent* self = agent.get();
  options.server.actions = [self](std::string_view type,
                                   const std::string& body) -> arrow::Result<std::string> {
    auto reply = self->HandleAction(type, body);
    // The message already names shuffle, partition and agent; the job manager gets it as is.
    if (!reply.ok()) return arrow::Status(reply.status().code(), reply.status().message());
    return reply;
  };
  ARROW_ASSIGN_OR_RAISE(agent->engine_, Engine::Make(std::move(options)));
  agent->ready_.store(true);
  return agent;
}

Agent::~Agent() {
  Shutdown();
  // Stop the server before the handlers it calls go away.
  if (engine_) (void)engine_->Shutdown();
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

arrow::Result<std::string> Agent::HandleAction(std::string_view type, const std::string& body) {
  if (!ready_.load()) {
    return arrow::Status::IOError("the agent is still starting; try again");
  }
  ARROW_ASSIGN_OR_RAISE(ControlMessage request, ControlMessage::Decode(body));
  if (type == kActionRegisterShuffle) return RegisterShuffle(request);
  if (type == kActionRunWriters) return RunTasks(request, /*writers=*/true);
  if (type == kActionRunReaders) return RunTasks(request, /*writers=*/false);
  if (type == kActionProgress) return Progress(request);
  if (type == kActionCancelShuffle) return CancelShuffle(request);
  if (type == kActionReleaseJob) return ReleaseJob(request);
  ShuffleManager* manager = engine_->shuffle_manager();
  if (type == kActionShuffleStats) {
    ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
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
  return arrow::Status::NotImplemented("unknown control action '", type, "'");
}

arrow::Result<std::string> Agent::RegisterShuffle(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(auto bytes, request.GetBytes("descriptor"));
  ARROW_ASSIGN_OR_RAISE(ShuffleDescriptor descriptor, ShuffleDescriptor::Deserialize(*bytes));
  std::string job_id = request.Has("job_id") ? request.Get("job_id").ValueOrDie() : "";
  ARROW_RETURN_NOT_OK(engine_->shuffle_manager()->RegisterShuffle(descriptor, job_id));
  std::lock_guard<std::mutex> lock(mutex_);
  // A repeated registration (the manager accepts the same descriptor again) keeps the state its
  // running tasks use; one after a cancelled run starts afresh.
  auto& state = states_[descriptor.shuffle_id];
  if (state == nullptr || state->cancellation.cancelled()) state = std::make_shared<RunState>();
  state->job_id = job_id;
  return std::string();
}

arrow::Result<std::string> Agent::RunTasks(const ControlMessage& request, bool writers) {
  ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
  ARROW_ASSIGN_OR_RAISE(GeneratedJob job, GetGeneratedJob(request));
  ARROW_ASSIGN_OR_RAISE(std::vector<int64_t> tasks, request.GetInts("tasks"));
  ShuffleManager* manager = engine_->shuffle_manager();
  ARROW_ASSIGN_OR_RAISE(auto descriptor, manager->GetShuffle(id));
  ARROW_ASSIGN_OR_RAISE(auto check, GeneratedShuffleCheck::Make(job, descriptor->spec));

  std::vector<TaskIndex> writer_tasks;
  std::vector<PartitionId> partitions;
  std::vector<WriterLocation> upstream;
  for (int64_t task : tasks) {
    (writers ? writer_tasks : partitions).push_back(static_cast<int32_t>(task));
  }
  if (!writers) {
    ARROW_ASSIGN_OR_RAISE(upstream, GetWriterLocations(request));
  }
  auto state = StateOf(id);
  if (state == nullptr) {
    return arrow::Status::Invalid("shuffle '", id, "' is not registered on this agent");
  }
  ARROW_ASSIGN_OR_RAISE(ShuffleRunReport report,
                        RunGeneratedShuffle(manager, id, job, writer_tasks, partitions, upstream,
                                            check.get(), &state->progress, &state->cancellation));
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
  auto state = StateOf(id);
  ControlMessage reply;
  reply.SetInt("rows_written", state ? state->progress.rows_written.load() : 0);
  reply.SetInt("rows_read", state ? state->progress.rows_read.load() : 0);
  return reply.Encode();
}

arrow::Result<std::string> Agent::CancelShuffle(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
  std::string reason = request.Has("reason") ? request.Get("reason").ValueOrDie() : "";
  if (reason.empty()) reason = "the job manager cancelled the shuffle";
  // An unknown shuffle (never registered here, or released) has nothing to cancel.
  if (auto state = StateOf(id)) state->cancellation.Cancel(arrow::Status::Cancelled(reason));
  return std::string();
}

arrow::Result<std::string> Agent::ReleaseJob(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string job_id, request.Get("job_id"));
  ControlMessage reply;
  reply.SetInt("released", engine_->shuffle_manager()->ReleaseJob(job_id));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(states_, [&](const auto& entry) { return entry.second->job_id == job_id; });
  }
  return reply.Encode();
}

}  // namespace sabot
