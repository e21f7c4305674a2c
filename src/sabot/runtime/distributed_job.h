#pragma once

// The distributed job driver: runs a dataflow plan on a set of agents (agent.h) over their
// Flight control actions (docs/shuffle-service.md, "Running a job's tasks"). The coordinator
// calls it for every job it runs; tests call it with in-process agents.
//
// Protocol, for one job: place the tasks into the agents' slots (task_placement.h); send every
// agent with tasks sabot.deploy_tasks (the plan, its tasks, every task's agent location: each
// agent binds the plan itself and finds its readers' upstream writers from the locations); poll
// sabot.job_status on every agent until every task finished (or a failure, a lost agent, the
// cancel flag); then sabot.commit_job phase 0 on every agent, phase 1 on every agent, ... ; on
// any failure sabot.abort_job everywhere instead (file sinks remove their temporary files, so no
// partial output stays); last, sabot.release_job on every agent (the job's shuffles and spill
// files go).
//
// With the plan's checkpoints on (PlanOptions::checkpoint, docs/fault-tolerance.md "Distributed
// recovery"), the driver also triggers checkpoint k every interval (sabot.trigger_checkpoint on
// the agents with source tasks), collects the tasks' snapshot acks from the status polls,
// commits the manifest (CheckpointStorage::Complete) once every task acked and tells every agent
// (sabot.checkpoint_complete). A task failure or a lost agent then restarts the job instead of
// failing it: abort and release everywhere, wait the restart delay (with backoff), place every
// task again on the live agents (DistributedJobOptions::replace_agents) and deploy it restoring
// the latest valid checkpoint, as a new attempt (job id "<job>-a<k>": new shuffle ids, so no
// channel of the failed attempt is read). At most max_restarts restarts; then the job fails
// with the cause.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <arrow/result.h>

#include "sabot/dataflow/job_report.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/runtime/cluster_state.h"
#include "sabot/shuffle/shuffle_options.h"
#include "sabot/transport/shuffle_client.h"

namespace sabot {

// An agent the driver may place tasks on: its id (for errors and JobInfo), its control and
// shuffle server's location, and the slots it offers this job.
struct AgentEndpoint {
  std::string id;
  std::string location;
  int32_t slots = 1;
};

// One agent's memory figures for a job, as its last status said (-1: unknown).
struct AgentJobFigures {
  std::string id;
  int32_t tasks = 0;                // the job's tasks it ran
  int64_t peak_budget_bytes = -1;   // its budget pool's peak
  int64_t memory_budget_bytes = -1;
  int64_t peak_rss_bytes = -1;      // its process's peak resident memory
};

struct DistributedJobOptions {
  std::string job_id;                         // ids as BindJob wants (<= 24 chars)
  // Per agent, for this job's shuffles (BindJob fits them to it); 0: each agent's whole budget.
  // More than an agent's budget is refused by that agent.
  int64_t memory_budget = 256LL << 20;
  int64_t state_budget_per_task = 0;
  ShuffleOptions shuffle;                     // every edge (mode from the plan)
  ShuffleClientOptions client;                // how the driver reaches agents (TLS, token)
  std::chrono::milliseconds progress_interval{500};
  // Called from the driver's thread with the job's tasks (placed, states, errors) and figures
  // so far (operators, edges with live rows[i][j], channel_bytes, writer_blocked).
  std::function<void(const JobInfo&)> on_progress;
  const std::atomic<bool>* cancel = nullptr;  // set: cancel the job (Cancelled)
  std::chrono::milliseconds agent_timeout{5000};  // an agent that does not answer for this long is lost
  // Deploy and commit calls do real work on the agent (binding the plan reads file metadata, a
  // commit phase renames files): an agent that does not answer one within
  // max(agent_timeout, long_call_timeout) (at most client.call_timeout when that is set) is
  // lost and the job fails. The cancel flag interrupts the wait for a deploy and for commit
  // phase 0 (checks only); later commit phases publish output and run to their answer or
  // deadline, so that a cancel never leaves part of it.
  std::chrono::milliseconds long_call_timeout{std::chrono::seconds(30)};
  // Worker threads of each agent's tasks (0: the agent's cores).
  int32_t threads = 0;
  // The job fails (IOError saying so) when, across all agents, no rows moved and no task finished
  // for this long while no agent was busy (a step running, a task waiting for a time); zero
  // disables. Judged by the driver over the whole job: an agent whose readers wait for another
  // agent's slow writers is not stalled.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(120)};
  // When set, filled with every agent's figures (agents order) when the job succeeded.
  std::vector<AgentJobFigures>* agent_figures = nullptr;

  // Checkpointed jobs only. After a failure: the agents to deploy the job's next attempt on,
  // with the slots each offers it. Called on the driver's thread with the ids of the agents the
  // driver found lost (they answer no call) and the slots the job needs; it may wait (the
  // coordinator waits up to its bound for a replacement agent to register) and returns an
  // error saying why the job cannot go on (the job fails with it). Unset: the agents given,
  // minus the lost ones (CapacityError when their slots no longer hold the job).
  std::function<arrow::Result<std::vector<AgentEndpoint>>(const std::vector<std::string>& lost,
                                                          int32_t slots_needed)>
      replace_agents;
  // When set, filled with the job's restarts, recovery times and checkpoints however it ended
  // (also in every JobInfo given to on_progress).
  JobRecovery* recovery = nullptr;
};

// Refuses, naming the operator, what cannot run across processes: collect sinks and table
// sources (their rows live in one process's memory).
arrow::Status CheckDistributedPlan(const LogicalPlan& plan);

// Places the plan's tasks on `agents` (task_placement.h: spread across agents, a FORWARD chain's
// operators are one task already), ships each agent its tasks with the plan, drives the job to
// its end (all tasks finished -> commit phases on every agent; any failure or lost agent ->
// abort everywhere, within seconds), releases the job on every agent, and returns the report.
// Errors name job, operator, task and agent. Thread safety: any number of jobs may run at once
// (distinct job ids), each on its caller's thread.
arrow::Result<JobReport> RunDistributedJob(const LogicalPlan& plan,
                                           const std::vector<AgentEndpoint>& agents,
                                           const DistributedJobOptions& options);

}  // namespace sabot
