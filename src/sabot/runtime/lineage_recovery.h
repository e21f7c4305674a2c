#pragma once

// Lineage recovery of batch jobs (docs/fault-tolerance.md, "Batch jobs: lineage recovery"): when
// agents of a job whose every shuffle edge is BLOCKING are lost, the driver re-runs only the
// lost work. A writer task's output lives in its agent's block store (served over Flight), so a
// lost agent takes with it the output of every writer task it ran, finished or not, and the
// state of every task it ran. What survives on the live agents (their writers' stored streams,
// their tasks' progress) is kept.
//
// This file decides WHAT to re-run and WHERE, from the execution graph, the placement and which
// tasks finished; the distributed driver (distributed_job.cc) carries the plan out: it deploys
// the re-runs as new attempts (sabot.deploy_tasks with `task_attempts`) and tells every live
// agent where the re-run writers' streams now are (sabot.relocate_writers), so that readers
// that lack a stream fetch it from its new attempt (ShuffleManager::RelocateWriter).
//
// The agent side (end of this file) applies relocations to an agent's shuffle manager and adds
// re-run task groups to its job status. Everything here is a plain function: no state of its
// own; safe to call from any thread (the agent helpers as safe as the objects they are given).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/task_group.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/runtime/control_actions.h"

namespace sabot {

class ShuffleManager;

// OK when lineage recovery applies to `graph`'s job: it has at least one shuffle edge, every
// shuffle edge is BLOCKING (`options: shuffle_mode: blocking`) and checkpoints are off (a
// streaming job with checkpoints recovers from its checkpoint instead). Otherwise Invalid saying
// why (the driver then fails the job on a lost agent, as before).
arrow::Status CheckLineageRecoverable(const ExecutionGraph& graph);

// What the driver knows of a job when agents are lost. Vectors over graph tasks are in
// ExecutionGraph::tasks() order; over agents in the driver's agent order.
struct LineageState {
  std::vector<int32_t> task_agent;    // each task's current agent
  std::vector<int32_t> task_attempt;  // each task's current attempt (0 for the first run)
  std::vector<bool> task_finished;    // each task's current attempt finished (as last polled)
  std::vector<bool> agent_live;       // false: lost (everything it held is gone)
};

// The state from what the driver tracks: each task's agent and attempt, each agent's last
// sabot.job_status (nullptr: none yet; its finished flags count for the tasks whose current agent
// it is, so a lost attempt's flag never stands for its re-run) and whether it is live.
LineageState MakeLineageState(const std::vector<int32_t>& task_agent,
                              const std::vector<int32_t>& task_attempt,
                              const std::vector<const JobStatusReport*>& statuses,
                              const std::vector<bool>& agent_live);

// Whether chain `chain` of `graph` ends in a sink (its output is committed by its agent).
bool ChainHasSink(const ExecutionGraph& graph, int32_t chain);

// One task to run again: graph task `task` as attempt `attempt` on agent `agent`.
struct LineageRerun {
  int64_t task = 0;
  int32_t attempt = 0;
  int32_t agent = 0;
  bool operator==(const LineageRerun&) const = default;
};

// Writer task `writer_task` of the `shuffle`-th shuffle edge (ExecutionGraph::shuffle_edges()
// order) now writes its stream as attempt `attempt` on agent `agent`.
struct WriterRelocation {
  int32_t shuffle = 0;
  int32_t writer_task = 0;
  int32_t attempt = 0;
  int32_t agent = 0;
  bool operator==(const WriterRelocation&) const = default;
};

struct LineagePlan {
  std::vector<LineageRerun> reruns;            // graph task order
  std::vector<WriterRelocation> relocations;   // shuffle, then writer order
  // One line per re-run task for reports: "task 1 of 'scan' (attempt 1) on agent 2".
  std::vector<std::string> Describe(const ExecutionGraph& graph) const;
};

// Decides which tasks re-run after the agents marked not live in `state` were lost.
//
// A task whose agent is not live is orphaned: its state and its stored output are gone. It
// re-runs when its work is still needed: it is unfinished; or its chain ends in a sink (a sink's
// output is committed by the agent that ran it, at the end of the job: the new attempt writes it
// again and commits it; the lost attempt's temporary files are left behind, never published);
// or a reader of one of its output shuffles still needs its stream: that reader is unfinished or
// re-runs itself (applied until nothing changes: a re-run reader needs every upstream writer's
// stream, so orphaned writers upstream of it re-run too, transitively). An orphaned writer whose
// readers all finished is not re-run. Tasks on live agents never re-run: their stored output is
// there, and a reader that lacks a stream of a re-run writer fetches it from the new attempt.
//
// Each re-run gets attempt task_attempt + 1 and the live agent holding the fewest tasks of its
// chain, then the fewest tasks (ties: the lower index), counting the re-runs placed before it
// (graph task order). Every writer task of a re-run gets one relocation per output shuffle edge.
//
// Invalid when the vectors' sizes do not match the graph, an agent index is out of range, or a
// task must re-run and no agent is live.
arrow::Result<LineagePlan> PlanLineageRecovery(const ExecutionGraph& graph,
                                               const LineageState& state);

// What the driver sends to carry out a LineagePlan.
struct LineageMessages {
  // Per agent that runs re-runs: sabot.deploy_tasks of them (the job's deployment with `tasks`
  // the re-runs placed there, task_agents and task_attempts after the plan, lineage on).
  std::vector<std::pair<int32_t, TaskDeployment>> deployments;
  // sabot.relocate_writers for every live agent of the job (task_agents and task_attempts after
  // the plan).
  TaskDeployment relocation;
};

// Applies `plan` to `state` (each re-run's agent and attempt; its finished flag cleared) and
// builds the messages from `base`, the deployment the job's tasks were first deployed with
// (its plan, budgets, options and agents; `tasks` is ignored). `state` must be the one the
// plan was made from.
LineageMessages ApplyLineagePlan(const LineagePlan& plan, const TaskDeployment& base,
                                 LineageState* state);

// The pause before the `restart`-th recovery (0 for the first) of a job whose restart strategy
// is `options` (CheckpointOptions' max_restarts, restart_delay, restart_backoff and
// max_restart_delay apply to lineage recovery too): min(restart_delay * restart_backoff^restart,
// max_restart_delay).
std::chrono::milliseconds LineageRestartDelay(const CheckpointOptions& options, int32_t restart);

// --- Agent side (agent.cc, agent_lineage.cc) ----------------------------------------------------

// Tells `manager` where every writer task that runs again (attempt > 0 in
// `deployment.task_attempts`; nothing when that is empty) of every shuffle of `graph`'s job
// (`job_id`) writes its streams now: ShuffleManager::RelocateWriter with the writer's attempt and
// `deployment.agents[deployment.task_agents[t]]`. Invalid when the deployment's sizes do not
// match the graph; RelocateWriter's errors.
arrow::Status ApplyWriterRelocations(ShuffleManager* manager, const std::string& job_id,
                                     const ExecutionGraph& graph,
                                     const TaskDeployment& deployment);

// Adds the re-run task group `group` (running graph tasks `tasks`, in its order) to an agent's
// sabot.job_status reply: its tasks' states and its done, busy, signature and failure to
// `report`, its operators' and edges' figures to `figures` (the job's first group's, which the
// reply carries).
void AddRerunStatus(const TaskGroup& group, const std::vector<int64_t>& tasks,
                    JobStatusReport* report, TaskGroupFigures* figures);

}  // namespace sabot
