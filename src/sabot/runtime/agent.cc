#include "sabot/runtime/agent.h"

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

std::shared_ptr<ShuffleProgress> Agent::ProgressOf(const ShuffleId& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& progress = progress_[id];
  if (progress == nullptr) progress = std::make_shared<ShuffleProgress>();
  return progress;
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
  ShuffleManager* manager = engine_->shuffle_manager();
  if (type == kActionShuffleStats) {
    ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
    ARROW_ASSIGN_OR_RAISE(ShuffleStats stats, manager->Stats(id));
    ControlMessage reply;
    PutShuffleStats(stats, &reply);
    return reply.Encode();
  }
  if (type == kActionReleaseJob) {
    ARROW_ASSIGN_OR_RAISE(std::string job_id, request.Get("job_id"));
    ControlMessage reply;
    reply.SetInt("released", manager->ReleaseJob(job_id));
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
  ARROW_ASSIGN_OR_RAISE(ShuffleRunReport report,
                        RunGeneratedShuffle(manager, id, job, writer_tasks, partitions, upstream,
                                            check.get(), ProgressOf(id).get()));
  ControlMessage reply;
  reply.SetInt("rows_written", report.rows_written);
  reply.SetInt("bytes_written", report.bytes_written);
  reply.SetInt("elapsed_ns", report.elapsed.count());
  if (!writers) {
    reply.SetInts("partition_rows", report.partition_rows);
    ARROW_ASSIGN_OR_RAISE(auto seen, check->SerializeSeen());
    reply.SetBytes("seen", *seen);
  }
  return reply.Encode();
}

arrow::Result<std::string> Agent::Progress(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(std::string id, request.Get("shuffle_id"));
  auto progress = ProgressOf(id);
  ControlMessage reply;
  reply.SetInt("rows_written", progress->rows_written.load());
  reply.SetInt("rows_read", progress->rows_read.load());
  return reply.Encode();
}

}  // namespace sabot
