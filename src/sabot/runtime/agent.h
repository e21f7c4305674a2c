#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arrow/result.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/task_group.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/control_message.h"
#include "sabot/runtime/engine.h"
#include "sabot/runtime/generated_shuffle_run.h"

namespace sabot {

// Checks a run_writers (`writers`) or run_readers request against the shuffle it names, before
// anything is allocated for it: the job's writer count and schema match the registered
// descriptor; every task is in range (a writer task, or a partition) and named once; every
// upstream location names a writer task in range, once. Returns the tasks and upstream locations.
// Invalid or IndexError naming what is wrong.
arrow::Result<std::pair<std::vector<int32_t>, std::vector<WriterLocation>>> CheckRunRequest(
    const ControlMessage& request, const ShuffleDescriptor& descriptor, const GeneratedJob& job,
    const std::vector<int64_t>& tasks, bool writers);

// How an agent treats the dataflow jobs deployed on it.
struct AgentJobOptions {
  // A dataflow job deployed here whose driver sent no control call about it (job_status,
  // commit_job, abort_job; the driver polls job_status at least every few hundred ms) for this
  // long is given up: its tasks are failed and aborted (uncommitted sink output removed) and the
  // job is released (its shuffles' memory and spill files go), as if the driver had aborted and
  // released it. A call in progress holds the job. Must be positive; `sabot agent --job-timeout`.
  std::chrono::milliseconds job_timeout{std::chrono::seconds(30)};
};

// One agent of a distributed job: a distributed-mode Engine (shuffle manager, Flight server,
// client) that also answers the job manager's control actions (control_actions.h) on its
// server: register a shuffle, run writer or reader tasks, report stats and progress, cancel a
// shuffle's tasks, release, shut down; and for dataflow jobs (any plan): deploy some of a job's
// tasks (the agent binds the plan itself: sources and sinks name files every agent reaches),
// report their status and figures, commit phase k, abort, release (docs/shuffle-service.md);
// for jobs with checkpoints: restore a deployment from a checkpoint, trigger a checkpoint, report
// the tasks' snapshot acks in the job's status, and pass on a checkpoint's completion.
//
// A watcher thread expires dataflow jobs whose driver went silent (AgentJobOptions::job_timeout).
// Lifecycle: Make() starts the server and the watcher; control actions arrive on Flight's threads; WaitForShutdown()
// returns once the shutdown action arrived, or Shutdown() or Stop() was called. Destroying the
// agent cancels the tasks still running (they end with Cancelled at once, whatever they wait
// for), waits for their calls to return, then releases every shuffle (deleting its spill
// files) and stops the server; the watcher stops with Shutdown() and is joined by the destructor.
// Thread safety: safe for concurrent use.
class Agent {
 public:
  // Invalid if `agent_options.job_timeout` is not positive.
  static arrow::Result<std::unique_ptr<Agent>> Make(EngineOptions options,
                                                    AgentJobOptions agent_options = {});
  ~Agent();

  const std::string& location() const { return engine_->location(); }
  Engine* engine() { return engine_.get(); }

  // What provides the functions of a plan's function_map operators (function_map.h) on this
  // agent: called when a job's tasks are deployed, with its plan; the job is refused with its
  // error. Unset (a C++ agent): no functions, and a plan with a function_map is refused when
  // bound. The Python package's agent (`python -m sabot agent`) sets it. Call before the agent
  // receives jobs; the provider is called from Flight's threads.
  using FunctionProvider =
      std::function<arrow::Result<std::shared_ptr<ProvidedFunctions>>(const LogicalPlan& plan)>;
  void SetFunctionProvider(FunctionProvider provider);

  // Handles control action `type` with `body` (a ControlMessage); the result body.
  arrow::Result<std::string> HandleAction(std::string_view type, const std::string& body);

  void WaitForShutdown();
  void Shutdown();
  // Cancels the running tasks of every shuffle with `reason` (a Cancelled status saying why the
  // agent stops: a signal, its job manager gone), then Shutdown(). The first reason is kept.
  void Stop(const arrow::Status& reason);
  // Why the agent was stopped: OK after the shutdown action or Shutdown(), else Stop's reason.
  arrow::Status stop_reason() const;
  // When the last control action arrived (Make() counts as one): the job manager's heartbeat.
  std::chrono::steady_clock::time_point last_control_action() const;

 private:
  Agent() = default;
  arrow::Result<std::string> RegisterShuffle(const ControlMessage& request);
  arrow::Result<std::string> RunTasks(const ControlMessage& request, bool writers);
  arrow::Result<std::string> Progress(const ControlMessage& request);
  arrow::Result<std::string> CancelShuffle(const ControlMessage& request);
  arrow::Result<std::string> ReleaseJob(const ControlMessage& request);
  // Dataflow jobs: sabot.deploy_tasks, sabot.job_status, sabot.commit_job, sabot.abort_job.
  arrow::Result<std::string> DeployTasks(const ControlMessage& request);
  arrow::Result<std::string> JobStatus(const ControlMessage& request);
  arrow::Result<std::string> CommitJob(const ControlMessage& request);
  arrow::Result<std::string> AbortJob(const ControlMessage& request);
  // Lineage recovery: sabot.relocate_writers, and a deployment of re-run tasks into a job
  // deployed here already (DeployTasks sends it here).
  arrow::Result<std::string> RelocateWriters(const ControlMessage& request);
  // Checkpoints: sabot.trigger_checkpoint, sabot.checkpoint_complete.
  arrow::Result<std::string> TriggerCheckpoint(const ControlMessage& request);
  arrow::Result<std::string> CheckpointComplete(const ControlMessage& request);

  // The snapshot acks of a job's tasks not yet reported complete, shared by the job's task
  // group (which adds them from its threads) and the control calls (which read and drop them).
  struct CheckpointAcks {
    std::mutex mutex;
    std::vector<SnapshotAck> acks SABOT_GUARDED_BY(mutex);
    CheckpointId completed SABOT_GUARDED_BY(mutex) = kNoCheckpoint;
  };

  // A dataflow job's tasks on this agent: the job bound here and the task group running them.
  // `group` is destroyed (uncommitted output removed) when the job is released or the agent goes.
  struct JobRun {
    std::shared_ptr<const BoundJob> bound;
    std::unique_ptr<TaskGroup> group;
    std::vector<int64_t> tasks;  // graph task indices, parallel to the group's tasks
    // Lineage recovery: groups of re-run task attempts deployed into the job later, each with
    // its graph task indices. The vector is guarded by the agent's mutex_ (appended to while
    // the job runs); the groups themselves are safe for concurrent use.
    struct Rerun {
      std::unique_ptr<TaskGroup> group;
      std::vector<int64_t> tasks;
    };
    std::vector<std::shared_ptr<Rerun>> reruns;
    // The last commit phase each group committed (sabot.commit_job may come again after
    // re-runs joined the job). Guarded by the agent's mutex_.
    std::map<const TaskGroup*, int64_t> committed_phases;
    // Set when the job has checkpoints on.
    std::shared_ptr<CheckpointAcks> checkpoints;
    // Control calls about the job in progress (a deployment counts until its tasks started),
    // and when the last one began or ended. Guarded by the agent's mutex_.
    int64_t calls = 0;
    std::chrono::steady_clock::time_point last_contact;
  };
  std::shared_ptr<JobRun> JobOf(const std::string& job_id);
  // Every task group of `run` with its graph task indices: the first deployment's, then the
  // re-runs'. The groups stay valid while `run` is held.
  std::vector<std::pair<TaskGroup*, const std::vector<int64_t>*>> GroupsOf(JobRun* run);
  // Deploys the re-run tasks of `deployment` into `run` (the job deployed here already).
  arrow::Result<std::string> DeployRerun(const TaskDeployment& deployment,
                                         const std::shared_ptr<JobRun>& run);
  // The job for a control call about it (nullptr if not deployed): the call counts as the
  // driver's contact, and the job is not expired until the returned pointer is dropped.
  std::shared_ptr<JobRun> HoldJob(const std::string& job_id);
  // The job and checkpoint id a checkpoint call (trigger, complete) names: KeyError when the job
  // is not deployed here, Invalid when it was deployed without checkpoints or the id is not
  // positive.
  arrow::Result<std::pair<std::shared_ptr<JobRun>, CheckpointId>> CheckpointedJob(
      const ControlMessage& request);
  // Ends a hold (or the deployment's) taken on `run`.
  void Unhold(JobRun* run);
  // Releases job `job_id` (its JobRun already out of jobs_): its shuffles and their states.
  int64_t ReleaseShuffles(const std::string& job_id);
  // The watcher thread: until shutdown, expires jobs silent for longer than the job timeout.
  void WatchJobs();
  // Fails, aborts and releases `run`, already taken out of jobs_, with `cause`.
  void ExpireJob(const std::string& job_id, const std::shared_ptr<JobRun>& run,
                 const arrow::Status& cause);

  // What the runs of one shuffle on this agent share: counters for progress, and the
  // cancellation by which its writer and reader runs (and the job manager) end each other.
  struct RunState {
    std::string job_id;
    ShuffleProgress progress;
    ShuffleRunCancellation cancellation;
  };
  // The shuffle's state: made when the shuffle is registered (afresh after a cancelled run),
  // nullptr when it is not
  // (never registered, or its job released).
  std::shared_ptr<RunState> StateOf(const ShuffleId& id);
  // Cancels every shuffle's runs with `reason`.
  void CancelAll(const arrow::Status& reason);

  std::unique_ptr<Engine> engine_;
  // Set once engine_ is assigned: the server may call HandleAction before Make returns.
  std::atomic<bool> ready_{false};
  mutable std::mutex mutex_;
  std::condition_variable shutdown_cv_;
  bool shutdown_ = false;
  arrow::Status stop_reason_;
  int64_t running_tasks_ = 0;  // RunTasks calls in progress
  std::condition_variable tasks_done_;
  std::atomic<int64_t> last_action_nanos_{0};  // steady clock
  // Dropped when the shuffle's job is released.
  std::map<ShuffleId, std::shared_ptr<RunState>> states_;
  FunctionProvider function_provider_;  // guarded by mutex_
  // Dataflow jobs deployed here, until released.
  std::map<std::string, std::shared_ptr<JobRun>> jobs_;
  AgentJobOptions agent_options_;
  std::thread watcher_;  // WatchJobs; joined by the destructor
};

}  // namespace sabot
