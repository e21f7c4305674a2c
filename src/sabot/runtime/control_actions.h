#pragma once

#include <string_view>

#include <arrow/result.h>

#include "sabot/dataflow/checkpoint.h"
#include "sabot/dataflow/job_report.h"
#include "sabot/runtime/control_message.h"
#include "sabot/shuffle/shuffle_options.h"
#include "sabot/verify/generated_shuffle_check.h"
#include "sabot/shuffle/shuffle_manager.h"

namespace sabot {

// The control actions a job manager sends an agent over Flight DoAction (docs/shuffle-service.md).
// Bodies and results are ControlMessages.
inline constexpr std::string_view kActionRegisterShuffle = "sabot.register_shuffle";
inline constexpr std::string_view kActionRunWriters = "sabot.run_writers";
inline constexpr std::string_view kActionRunReaders = "sabot.run_readers";
inline constexpr std::string_view kActionShuffleStats = "sabot.shuffle_stats";
inline constexpr std::string_view kActionProgress = "sabot.progress";
inline constexpr std::string_view kActionCancelShuffle = "sabot.cancel_shuffle";
inline constexpr std::string_view kActionReleaseJob = "sabot.release_job";
inline constexpr std::string_view kActionShutdown = "sabot.shutdown";
// Dataflow jobs (docs/shuffle-service.md, "Running a job's tasks"): deploy some of a job's tasks,
// ask their status and figures, commit phase k, abort; sabot.release_job ends them.
inline constexpr std::string_view kActionDeployTasks = "sabot.deploy_tasks";
inline constexpr std::string_view kActionJobStatus = "sabot.job_status";
inline constexpr std::string_view kActionCommitJob = "sabot.commit_job";
inline constexpr std::string_view kActionAbortJob = "sabot.abort_job";
// Lineage recovery of blocking batch jobs (docs/shuffle-service.md, docs/fault-tolerance.md):
// tell an agent where re-run writer tasks now write their streams (a TaskDeployment's
// job_id, agents, task_agents and task_attempts; plan and tasks are not sent).
inline constexpr std::string_view kActionRelocateWriters = "sabot.relocate_writers";
// Checkpoints of a streaming job (docs/fault-tolerance.md, "Distributed recovery"): trigger
// checkpoint `checkpoint_id` (the agent's source tasks inject its barrier), and tell the agent's
// tasks that checkpoint `checkpoint_id` is complete (its manifest is committed; exactly-once
// sinks publish). Both take `job_id` and `checkpoint_id`; the snapshots' acks come back in
// sabot.job_status.
inline constexpr std::string_view kActionTriggerCheckpoint = "sabot.trigger_checkpoint";
inline constexpr std::string_view kActionCheckpointComplete = "sabot.checkpoint_complete";

// The most tasks, agents and list items a deployment may name (checked before anything is
// allocated for them).
inline constexpr int64_t kMaxDeployedTasks = 1 << 16;
inline constexpr int64_t kMaxDeployAgents = 1 << 12;

// What sabot.deploy_tasks carries: a job's plan and the tasks one agent runs of it.
struct TaskDeployment {
  std::string job_id;
  std::string plan_json;              // PlanToJson (plan_json.h)
  int64_t memory_budget = 0;          // bytes for the job's shuffles here; 0: the agent's budget
  int64_t state_budget_per_task = 0;  // TaskContext::state_budget_bytes; 0: no limit
  ShuffleOptions shuffle;             // every edge (the mode is the plan's)
  int32_t threads = 0;                // worker threads for the tasks; 0: the machine's cores
  int64_t stall_timeout_ms = 120000;  // 0: no stall detection
  // The locations of the job's agents ("grpc+tcp://host:port"), and for every task of the job's
  // execution graph (ExecutionGraph::tasks() order) the index of its agent in `agents`.
  std::vector<std::string> agents;
  std::vector<int64_t> task_agents;
  // The tasks this agent runs: indices into ExecutionGraph::tasks().
  std::vector<int64_t> tasks;
  // Lineage recovery (runtime/lineage_recovery.h). `lineage`: the job's blocking shuffles are
  // read recoverably (ShuffleManager::EnableRecovery). `task_attempts`: for every task of the
  // graph (parallel to task_agents) its current attempt; empty: all 0. The deployed tasks run as
  // their attempt, and readers read each writer task from its attempt at its agent. A deployment
  // of a job already deployed on the agent adds its tasks (re-runs) to it.
  bool lineage = false;
  std::vector<int64_t> task_attempts;
  // With the plan's checkpoints on (`checkpoint_job` not empty): the checkpoint directory (or
  // URI) and the name under which the job's checkpoints are stored there (the same for every
  // attempt of a job, unlike `job_id`), how many complete ones are kept, and the complete
  // checkpoint every task restores before it runs (kNoCheckpoint: a fresh start). The agent
  // opens the directory itself: agents and driver share a filesystem.
  std::string checkpoint_job;
  std::string checkpoint_directory;
  int32_t checkpoint_retained = 2;
  CheckpointId restore_checkpoint = kNoCheckpoint;
};
void PutTaskDeployment(const TaskDeployment& deployment, ControlMessage* message);
// Checks what needs no plan: ids, sizes (at most kMaxDeployedTasks tasks, kMaxDeployAgents
// agents), agent indices in range, tasks named once; Invalid / IndexError naming the field.
arrow::Result<TaskDeployment> GetTaskDeployment(const ControlMessage& message);
// sabot.relocate_writers: the deployment's job_id, agents, task_agents and task_attempts.
void PutWriterRelocations(const TaskDeployment& deployment, ControlMessage* message);
// Checks as GetTaskDeployment does, for those fields (task_attempts required, as long as
// task_agents, each >= 0).
arrow::Result<TaskDeployment> GetWriterRelocations(const ControlMessage& message);

// One file of a task's snapshot, as the agent wrote it (relative to the checkpoint's folder).
struct SnapshotAckFile {
  std::string path;
  int64_t bytes = 0;
  uint32_t crc32c = 0;
  bool operator==(const SnapshotAckFile&) const = default;
};

// A task's answer to a checkpoint: its snapshot is durable (`files`), or it failed (`error`).
struct SnapshotAck {
  int64_t task = -1;  // graph task index (-1: a failed snapshot whose task is not known)
  CheckpointId id = kNoCheckpoint;
  arrow::Status error;
  std::vector<SnapshotAckFile> files;
  // The task had ended before the barrier reached it (no files; restored as ended).
  bool finished = false;
};

// The most snapshot acks and files one job status may carry.
inline constexpr int64_t kMaxSnapshotAckLines = 1 << 20;

// What sabot.job_status answers: whether the agent's tasks of the job all ended, the first
// failure among them, and their figures (TaskGroupFigures; operators and tasks by id).
struct JobStatusReport {
  bool done = false;
  // TaskGroup::busy() and Signature(): the driver tells a stalled job from a slow one with them.
  bool busy = false;
  int64_t signature = 0;
  arrow::Status failure;
  // Which agent task failed first (graph task index), -1: none or not one of them.
  int64_t failed_task = -1;
  std::vector<int64_t> task_index;  // graph task indices of the agent's tasks
  std::vector<int64_t> task_finished;
  std::vector<int64_t> task_rows_in;
  std::vector<int64_t> task_rows_out;
  std::vector<OperatorReport> operators;  // id, rows, busy, late rows, spill, watermark
  std::vector<int64_t> operator_tasks;
  // Per shuffle edge (graph order): bytes, spill, blocked, and rows N x M.
  std::vector<EdgeReport> edges;
  int64_t peak_memory_bytes = 0;
  int64_t memory_budget_bytes = 0;
  int64_t peak_rss_bytes = -1;  // the agent process's peak resident memory; -1: unknown
  // The acks of the agent's tasks for the checkpoints not yet complete (every ack is repeated
  // until sabot.checkpoint_complete names its checkpoint or a later one: a lost reply loses
  // nothing). Absent from an agent's reply when the job has no checkpoints.
  std::vector<SnapshotAck> snapshots;
};
void PutJobStatus(const JobStatusReport& report, ControlMessage* message);
// `edge_shapes[k]`: (writers, partitions) of shuffle edge k; the reply must match them.
arrow::Result<JobStatusReport> GetJobStatus(
    const ControlMessage& message, const std::vector<std::pair<int32_t, int32_t>>& edge_shapes);

// GeneratedJob <-> fields of a control message.
void PutGeneratedJob(const GeneratedJob& job, ControlMessage* message);
arrow::Result<GeneratedJob> GetGeneratedJob(const ControlMessage& message);

// Writer locations as "task@location" items, comma-free by construction.
void PutWriterLocations(const std::vector<WriterLocation>& locations, ControlMessage* message);
arrow::Result<std::vector<WriterLocation>> GetWriterLocations(const ControlMessage& message);

// ShuffleStats <-> fields.
void PutShuffleStats(const ShuffleStats& stats, ControlMessage* message);
arrow::Result<ShuffleStats> GetShuffleStats(const ControlMessage& message);

}  // namespace sabot
