#include "sabot/runtime/lineage_recovery.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

bool ChainHasSink(const ExecutionGraph& graph, int32_t chain) {
  for (OperatorId id : graph.chains()[chain].operators) {
    const OperatorSpec* spec = graph.plan().FindOperator(id);
    if (spec != nullptr && IsSink(spec->kind())) return true;
  }
  return false;
}

arrow::Status CheckLineageRecoverable(const ExecutionGraph& graph) {
  if (!graph.plan().options().lineage_recovery) {
    return arrow::Status::Invalid("lineage recovery is off (options: lineage_recovery: true)");
  }
  if (graph.plan().options().checkpoint.enabled()) {
    return arrow::Status::Invalid(
        "the job takes checkpoints: it recovers from its latest checkpoint, not by lineage");
  }
  if (graph.shuffle_edges().empty()) {
    return arrow::Status::Invalid("the job has no shuffle edge: nothing is stored to recover from");
  }
  for (size_t e : graph.shuffle_edges()) {
    const GraphEdge& edge = graph.edges()[e];
    if (edge.mode != ShuffleMode::kBlocking) {
      return arrow::Status::Invalid("shuffle edge '", edge.shuffle_id,
                                    "' is pipelined: lineage recovery needs every edge blocking "
                                    "(options: shuffle_mode: blocking)");
    }
  }
  return arrow::Status::OK();
}

LineageState MakeLineageState(const std::vector<int32_t>& task_agent,
                              const std::vector<int32_t>& task_attempt,
                              const std::vector<const JobStatusReport*>& statuses,
                              const std::vector<bool>& agent_live) {
  LineageState state;
  state.task_agent = task_agent;
  state.task_attempt = task_attempt;
  state.task_finished.assign(task_agent.size(), false);
  state.agent_live = agent_live;
  for (size_t a = 0; a < statuses.size(); ++a) {
    if (statuses[a] == nullptr) continue;
    const JobStatusReport& status = *statuses[a];
    for (size_t i = 0; i < status.task_index.size() && i < status.task_finished.size(); ++i) {
      const int64_t t = status.task_index[i];
      if (t < 0 || static_cast<size_t>(t) >= task_agent.size()) continue;
      if (task_agent[t] != static_cast<int32_t>(a)) continue;
      state.task_finished[t] = state.task_finished[t] || status.task_finished[i] != 0;
    }
  }
  return state;
}

std::vector<std::string> LineagePlan::Describe(const ExecutionGraph& graph) const {
  std::vector<std::string> lines;
  for (const LineageRerun& rerun : reruns) {
    const TaskSpec& task = graph.tasks()[rerun.task];
    lines.push_back("task " + std::to_string(task.subtask) + " of '" +
                    graph.chains()[task.chain].name + "' (attempt " +
                    std::to_string(rerun.attempt) + ") on agent " + std::to_string(rerun.agent));
  }
  return lines;
}

arrow::Result<LineagePlan> PlanLineageRecovery(const ExecutionGraph& graph,
                                               const LineageState& state) {
  const size_t num_tasks = graph.tasks().size();
  const size_t num_agents = state.agent_live.size();
  if (state.task_agent.size() != num_tasks || state.task_attempt.size() != num_tasks ||
      state.task_finished.size() != num_tasks) {
    return arrow::Status::Invalid("lineage recovery: the job has ", num_tasks,
                                  " tasks but the state gives ", state.task_agent.size(),
                                  " agents, ", state.task_attempt.size(), " attempts and ",
                                  state.task_finished.size(), " finished flags");
  }
  for (size_t t = 0; t < num_tasks; ++t) {
    if (state.task_agent[t] < 0 || static_cast<size_t>(state.task_agent[t]) >= num_agents) {
      return arrow::Status::Invalid("lineage recovery: task ", t, " is placed on agent ",
                                    state.task_agent[t], " of ", num_agents);
    }
    if (state.task_attempt[t] < 0) {
      return arrow::Status::Invalid("lineage recovery: task ", t, " has attempt ",
                                    state.task_attempt[t]);
    }
  }
  std::map<std::pair<int32_t, int32_t>, size_t> index_of;  // (chain, subtask) -> task
  for (size_t t = 0; t < num_tasks; ++t) {
    index_of[{graph.tasks()[t].chain, graph.tasks()[t].subtask}] = t;
  }
  auto orphaned = [&](size_t t) { return !state.agent_live[state.task_agent[t]]; };

  // The orphaned tasks still needed: unfinished, sinks, then writers a reader still needs
  // (unfinished, or re-running itself), until nothing changes.
  std::vector<bool> rerun(num_tasks, false);
  for (size_t t = 0; t < num_tasks; ++t) {
    if (!orphaned(t)) continue;
    rerun[t] = !state.task_finished[t] || ChainHasSink(graph, graph.tasks()[t].chain);
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t t = 0; t < num_tasks; ++t) {
      if (rerun[t] || !orphaned(t)) continue;
      const int32_t chain = graph.tasks()[t].chain;
      for (size_t e : graph.OutputShuffles(chain)) {
        const GraphEdge& edge = graph.edges()[e];
        for (int32_t r = 0; r < edge.num_partitions && !rerun[t]; ++r) {
          const size_t reader = index_of.at({edge.to_chain, r});
          if (rerun[reader] || (!orphaned(reader) && !state.task_finished[reader])) {
            rerun[t] = true;
          }
        }
      }
      changed = changed || rerun[t];
    }
  }

  LineagePlan plan;
  // Load per live agent: tasks of each chain and in all, counting re-runs as they are placed.
  std::vector<std::map<int32_t, int64_t>> chain_load(num_agents);
  std::vector<int64_t> load(num_agents, 0);
  for (size_t t = 0; t < num_tasks; ++t) {
    if (orphaned(t)) continue;
    chain_load[state.task_agent[t]][graph.tasks()[t].chain] += 1;
    load[state.task_agent[t]] += 1;
  }
  std::vector<int32_t> new_agent(num_tasks, -1);
  std::vector<int32_t> new_attempt(num_tasks, -1);
  for (size_t t = 0; t < num_tasks; ++t) {
    if (!rerun[t]) continue;
    const int32_t chain = graph.tasks()[t].chain;
    int32_t best = -1;
    for (size_t a = 0; a < num_agents; ++a) {
      if (!state.agent_live[a]) continue;
      if (best < 0) {
        best = static_cast<int32_t>(a);
        continue;
      }
      const auto key = std::make_pair(chain_load[a][chain], load[a]);
      const auto best_key = std::make_pair(chain_load[best][chain], load[best]);
      if (key < best_key) best = static_cast<int32_t>(a);
    }
    if (best < 0) {
      const TaskSpec& task = graph.tasks()[t];
      return arrow::Status::Invalid("lineage recovery: task ", task.subtask, " of '",
                                    graph.chains()[chain].name,
                                    "' must run again but no agent of the job is live");
    }
    chain_load[best][chain] += 1;
    load[best] += 1;
    new_agent[t] = best;
    new_attempt[t] = state.task_attempt[t] + 1;
    plan.reruns.push_back({static_cast<int64_t>(t), new_attempt[t], best});
  }
  const std::vector<size_t>& shuffles = graph.shuffle_edges();
  for (size_t k = 0; k < shuffles.size(); ++k) {
    const GraphEdge& edge = graph.edges()[shuffles[k]];
    for (int32_t w = 0; w < edge.num_writers; ++w) {
      const size_t t = index_of.at({edge.from_chain, w});
      if (!rerun[t]) continue;
      plan.relocations.push_back({static_cast<int32_t>(k), w, new_attempt[t], new_agent[t]});
    }
  }
  return plan;
}

LineageMessages ApplyLineagePlan(const LineagePlan& plan, const TaskDeployment& base,
                                 LineageState* state) {
  for (const LineageRerun& rerun : plan.reruns) {
    state->task_agent[rerun.task] = rerun.agent;
    state->task_attempt[rerun.task] = rerun.attempt;
    state->task_finished[rerun.task] = false;
  }
  TaskDeployment placed = base;
  placed.tasks.clear();
  placed.lineage = true;
  placed.task_agents.assign(state->task_agent.begin(), state->task_agent.end());
  placed.task_attempts.assign(state->task_attempt.begin(), state->task_attempt.end());
  LineageMessages messages;
  std::map<int32_t, std::vector<int64_t>> by_agent;
  for (const LineageRerun& rerun : plan.reruns) by_agent[rerun.agent].push_back(rerun.task);
  for (auto& [agent, tasks] : by_agent) {
    TaskDeployment deployment = placed;
    deployment.tasks = std::move(tasks);
    messages.deployments.emplace_back(agent, std::move(deployment));
  }
  messages.relocation = std::move(placed);
  return messages;
}

std::chrono::milliseconds LineageRestartDelay(const CheckpointOptions& options, int32_t restart) {
  const double factor = std::pow(std::max(options.restart_backoff, 1.0), std::max(restart, 0));
  const double delay = static_cast<double>(options.restart_delay.count()) * factor;
  const double cap = static_cast<double>(options.max_restart_delay.count());
  return std::chrono::milliseconds(static_cast<int64_t>(std::min(delay, cap)));
}

// --- Agent side ------------------------------------------------------------------------------

arrow::Status ApplyWriterRelocations(ShuffleManager* manager, const std::string& job_id,
                                     const ExecutionGraph& graph,
                                     const TaskDeployment& deployment) {
  if (deployment.task_attempts.empty()) return arrow::Status::OK();
  if (deployment.task_attempts.size() != graph.tasks().size() ||
      deployment.task_agents.size() != graph.tasks().size()) {
    return arrow::Status::Invalid("the relocation of job '", job_id, "' names ",
                                  deployment.task_attempts.size(), " tasks; the job has ",
                                  graph.tasks().size());
  }
  std::map<std::pair<int32_t, int32_t>, size_t> task_index;
  for (size_t t = 0; t < graph.tasks().size(); ++t) {
    task_index[{graph.tasks()[t].chain, graph.tasks()[t].subtask}] = t;
  }
  for (size_t e : graph.shuffle_edges()) {
    const GraphEdge& edge = graph.edges()[e];
    for (int32_t w = 0; w < edge.num_writers; ++w) {
      const size_t t = task_index.at({edge.from_chain, w});
      const int64_t attempt = deployment.task_attempts[t];
      if (attempt == 0) continue;
      ARROW_RETURN_NOT_OK(manager->RelocateWriter(
          job_id + "." + edge.shuffle_id,
          WriterLocation{w, static_cast<int32_t>(attempt),
                         deployment.agents[deployment.task_agents[t]]}));
    }
  }
  return arrow::Status::OK();
}

void AddRerunStatus(const TaskGroup& group, const std::vector<int64_t>& tasks,
                     JobStatusReport* report, TaskGroupFigures* figures) {
  TaskGroupFigures rerun = group.Figures();
  report->done = report->done && group.done();
  report->busy = report->busy || group.busy();
  report->signature += group.Signature();
  if (report->failure.ok()) report->failure = group.failure();
  for (size_t t = 0; t < rerun.tasks.size() && t < tasks.size(); ++t) {
    const GroupTaskStatus& task = rerun.tasks[t];
    report->task_index.push_back(tasks[t]);
    report->task_finished.push_back(task.finished ? 1 : 0);
    report->task_rows_in.push_back(task.rows_in);
    report->task_rows_out.push_back(task.rows_out);
    if (task.failed && report->failed_task < 0) report->failed_task = tasks[t];
  }
  for (size_t o = 0; o < rerun.operators.size(); ++o) {
    const OperatorReport& part = rerun.operators[o];
    auto it = std::find_if(figures->operators.begin(), figures->operators.end(),
                           [&](const OperatorReport& op) { return op.id == part.id; });
    if (it == figures->operators.end()) {
      figures->operators.push_back(part);
      figures->operator_tasks.push_back(rerun.operator_tasks[o]);
      continue;
    }
    it->rows_in += part.rows_in;
    it->rows_out += part.rows_out;
    it->busy += part.busy;
    it->late_rows += part.late_rows;
    it->state_spilled_bytes += part.state_spilled_bytes;
    it->watermark = std::min(it->watermark, part.watermark);
    figures->operator_tasks[it - figures->operators.begin()] += rerun.operator_tasks[o];
  }
  for (size_t k = 0; k < rerun.edges.size() && k < figures->edges.size(); ++k) {
    EdgeReport& edge = figures->edges[k];
    const EdgeReport& part = rerun.edges[k];
    edge.bytes += part.bytes;
    edge.bytes_spilled += part.bytes_spilled;
    edge.blocks_spilled += part.blocks_spilled;
    edge.blocked += part.blocked;
    for (size_t i = 0; i < edge.rows.size() && i < part.rows.size(); ++i) {
      for (size_t j = 0; j < edge.rows[i].size() && j < part.rows[i].size(); ++j) {
        edge.rows[i][j] += part.rows[i][j];
      }
    }
    for (size_t i = 0; i < edge.channel_bytes.size() && i < part.channel_bytes.size(); ++i) {
      for (size_t j = 0; j < edge.channel_bytes[i].size() && j < part.channel_bytes[i].size();
           ++j) {
        edge.channel_bytes[i][j] += part.channel_bytes[i][j];
      }
    }
    for (size_t i = 0; i < edge.writer_blocked.size() && i < part.writer_blocked.size(); ++i) {
      edge.writer_blocked[i] += part.writer_blocked[i];
    }
  }
}

}  // namespace sabot
