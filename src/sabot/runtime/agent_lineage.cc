// The agent's side of lineage recovery (lineage_recovery.h, docs/fault-tolerance.md): re-run
// task attempts deployed into a running job, and the relocation of re-run writers' streams.

#include <map>
#include <utility>

#include "sabot/common/logging.h"
#include "sabot/runtime/agent.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/lineage_recovery.h"

namespace sabot {

std::vector<std::pair<TaskGroup*, const std::vector<int64_t>*>> Agent::GroupsOf(JobRun* run) {
  std::vector<std::pair<TaskGroup*, const std::vector<int64_t>*>> groups;
  if (run->group != nullptr) groups.emplace_back(run->group.get(), &run->tasks);
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& rerun : run->reruns) groups.emplace_back(rerun->group.get(), &rerun->tasks);
  return groups;
}

arrow::Result<std::string> Agent::DeployRerun(const TaskDeployment& deployment,
                                              const std::shared_ptr<JobRun>& run) {
  ShuffleManager* manager = engine_->shuffle_manager();
  const std::string& job_id = deployment.job_id;
  if (run->group == nullptr) {
    return arrow::Status::Invalid("job '", job_id, "' is still being deployed on agent '",
                                  manager->options().agent_id, "'");
  }
  const ExecutionGraph& graph = run->bound->graph;
  if (deployment.task_agents.size() != graph.tasks().size()) {
    return arrow::Status::Invalid("the deployment places ", deployment.task_agents.size(),
                                  " tasks; job '", job_id, "' has ", graph.tasks().size());
  }
  // The new attempts' own writers, and every other writer that ran again, before the re-run
  // readers open.
  ARROW_RETURN_NOT_OK(ApplyWriterRelocations(manager, job_id, graph, deployment));
  TaskGroupOptions options;
  options.threads = deployment.threads;
  options.state = TaskStateLimits{deployment.state_budget_per_task,
                                  manager->options().spill.directory};
  options.stall_timeout = std::chrono::milliseconds(deployment.stall_timeout_ms);
  std::map<std::pair<int32_t, int32_t>, size_t> task_index;
  for (size_t t = 0; t < graph.tasks().size(); ++t) {
    task_index[{graph.tasks()[t].chain, graph.tasks()[t].subtask}] = t;
  }
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
    tasks.push_back({graph.tasks()[t].chain, graph.tasks()[t].subtask,
                     static_cast<int32_t>(deployment.task_attempts[t])});
  }
  ARROW_ASSIGN_OR_RAISE(auto group,
                        TaskGroup::Open(run->bound, manager, std::move(tasks), std::move(options)));
  auto rerun = std::make_shared<JobRun::Rerun>();
  rerun->group = std::move(group);
  rerun->tasks = deployment.tasks;
  rerun->group->Start();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    run->reruns.push_back(rerun);
  }
  SABOT_LOG(kInfo) << "agent '" << manager->options().agent_id << "': job '" << job_id
                   << "': running " << deployment.tasks.size() << " tasks again (lineage recovery)";
  ControlMessage reply;
  reply.SetInt("tasks", static_cast<int64_t>(deployment.tasks.size()));
  return reply.Encode();
}

arrow::Result<std::string> Agent::RelocateWriters(const ControlMessage& request) {
  ARROW_ASSIGN_OR_RAISE(TaskDeployment relocation, GetWriterRelocations(request));
  auto run = HoldJob(relocation.job_id);
  // A job not deployed here has no reader to tell.
  if (run == nullptr || run->bound == nullptr) return std::string();
  ARROW_RETURN_NOT_OK(ApplyWriterRelocations(engine_->shuffle_manager(), relocation.job_id,
                                       run->bound->graph, relocation));
  return std::string();
}

}  // namespace sabot
