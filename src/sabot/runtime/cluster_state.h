#pragma once

// The vocabulary of the distributed runtime: what a cluster knows of its agents, jobs and tasks,
// as plain values. The coordinator keeps these up to date; the distributed job driver
// (distributed_job.h) fills a job's tasks and edges while it runs; the HTTP API (http_api.h)
// and `sabot jobs` render them. Values: copy freely, no resources, no locks.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "sabot/dataflow/job_report.h"

namespace sabot {

// A job's life: created (accepted, not placed) -> scheduled (tasks placed into agents' slots,
// being shipped) -> running -> finished | failed | cancelled. The last three are final. A job
// with checkpoints whose task failed or whose agent was lost goes running -> restarting (its
// tasks aborted, waiting the restart delay and for slots, redeploying from the latest
// checkpoint) -> running again (docs/fault-tolerance.md, "Distributed recovery").
enum class JobState { kCreated, kScheduled, kRunning, kFinished, kFailed, kCancelled, kRestarting };
// One task's life, the same words; a task of a failed job that did not fail itself ends cancelled.
using TaskState = JobState;

std::string_view JobStateName(JobState state);  // "created", "scheduled", ... (lower case)
arrow::Result<JobState> ParseJobState(std::string_view name);
inline bool IsFinal(JobState state) {
  return state == JobState::kFinished || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

// An agent as the coordinator sees it.
struct AgentInfo {
  std::string id;        // given by the coordinator at registration ("agent-1", ...)
  std::string location;  // its shuffle/control server, "grpc+tcp://host:port"
  int32_t slots = 0;     // tasks it runs at once
  int32_t slots_used = 0;
  bool lost = false;     // no heartbeat within the coordinator's timeout
  std::chrono::system_clock::time_point registered_at{};
  std::chrono::system_clock::time_point last_heartbeat{};
  // Its memory, as its last heartbeat said (0 when unknown).
  int64_t memory_budget_bytes = 0;
  int64_t memory_used_bytes = 0;
};

// One task of a job: subtask `subtask` of chain `chain` of the execution graph, named by the
// chain's head operator.
struct TaskInfo {
  int32_t chain = 0;
  int32_t subtask = 0;
  std::string operator_name;  // the chain's head operator
  std::string agent_id;       // where it was placed ("" before placement)
  std::string agent_location;
  TaskState state = TaskState::kCreated;
  std::string error;          // why it failed or was cancelled
  int64_t rows_in = 0;
  int64_t rows_out = 0;
};

// What recovery did for a job with checkpoints (zeros for any other job).
struct JobRecovery {
  int32_t attempts = 1;   // deployments of the job's tasks: 1 + restarts
  int32_t restarts = 0;
  int64_t checkpoints_completed = 0;
  int64_t checkpoints_failed = 0;  // a task's snapshot failed, or abandoned (a task ended first)
  int64_t last_checkpoint = 0;     // the newest complete checkpoint's id (0: none)
  int64_t restored_checkpoint = 0; // the checkpoint the current attempt restored (0: none)
  // Per restart: from the failure seen by the driver to every task of the next attempt deployed.
  std::vector<std::chrono::nanoseconds> recovery_times;
  std::string last_failure;        // the failure that caused the last restart
};

// A job as the coordinator and the API see it: identity, state, the plan's graph, and its
// figures so far (EdgeReport::rows is the live N x M row matrix, EdgeReport::channel_bytes the
// bytes per channel and EdgeReport::writer_blocked the backpressure per writer task).
struct JobInfo {
  std::string id;
  std::string name;   // the job file's `job:` name, or the plan's
  JobState state = JobState::kCreated;
  std::string error;  // the failure, naming job, operator, task and agent
  std::chrono::system_clock::time_point submitted_at{};
  std::optional<std::chrono::system_clock::time_point> finished_at;
  std::string plan_json;   // the plan as submitted (plan_json.h)
  std::string explain;     // `sabot run --explain`'s text of its graph
  std::vector<TaskInfo> tasks;
  std::vector<OperatorReport> operators;  // per operator rows, time, watermark, spill, late rows
  std::vector<EdgeReport> edges;          // per shuffle edge, execution graph order
  int64_t peak_memory_bytes = 0;          // summed over agents
  int64_t memory_budget_bytes = 0;        // summed over agents
  std::chrono::nanoseconds elapsed{0};
  JobRecovery recovery;
};

// What a submitted job says beyond its plan.
struct JobSubmission {
  std::string name;             // "" = the plan's or "job"
  std::string plan_json;        // the serialized LogicalPlan (plan_json.h)
  int64_t memory_budget_bytes = 0;   // per agent; 0 = the agent's own
  int64_t state_budget_bytes = 0;    // per task; 0 = no limit
};

// A read/write view of a cluster: what the HTTP API and the CLI talk to (the Coordinator
// implements it). Thread safety: every method may be called from any thread, concurrently.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  virtual std::vector<AgentInfo> Agents() const = 0;
  // Every job, newest first.
  virtual std::vector<JobInfo> Jobs() const = 0;
  // KeyError naming the id when there is no such job.
  virtual arrow::Result<JobInfo> Job(const std::string& id) const = 0;
  // Validates and accepts a job; its id. Invalid (naming the operator) for a bad plan,
  // CapacityError when the cluster has fewer free slots than the job needs.
  virtual arrow::Result<std::string> Submit(const JobSubmission& job) = 0;
  // Cancels a job that has not ended; KeyError for an unknown id; a final job: OK, unchanged.
  virtual arrow::Status Cancel(const std::string& id) = 0;
};

}  // namespace sabot
