#pragma once

// The coordinator (`sabot coordinator`): the job manager of a Sabot cluster. Agents register
// with it and heartbeat; users submit jobs (serialized plans) which it validates, queues until
// enough slots are free, places into agents' slots and hands to a job runner (the distributed
// job driver) on a thread of their own, tracking their state until they end. docs/cluster.md
// tells the whole story.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arrow/result.h>

#include "sabot/common/thread_annotations.h"
#include "sabot/dataflow/job_report.h"
#include "sabot/dataflow/logical_plan.h"
#include "sabot/runtime/cluster_state.h"
#include "sabot/runtime/distributed_job.h"
#include "sabot/shuffle/shuffle_options.h"
#include "sabot/transport/shuffle_client.h"
#include "sabot/transport/shuffle_server.h"

namespace sabot {

// Runs one job's plan on the agents (and slots) the coordinator chose for it, to its end: what
// RunDistributedJob (distributed_job.h) does; tests inject fakes. Called on a thread of the
// coordinator's, one per job; must return once `options.cancel` is set (with Cancelled or any
// error), and may call `options.on_progress` from its thread at any time before it returns.
using JobRunner = std::function<arrow::Result<JobReport>(
    const LogicalPlan& plan, const std::vector<AgentEndpoint>& agents,
    const DistributedJobOptions& options)>;

struct CoordinatorOptions {
  // The control server: host, port (0: any free port), TLS, mutual TLS and the cluster's bearer
  // token. `actions` is the coordinator's own and must be left unset.
  ShuffleServerOptions server;
  // False: no server; the methods below are called directly (tests).
  bool serve = true;
  // An agent from which nothing was heard for this long is lost: the jobs using it fail.
  std::chrono::milliseconds agent_timeout{10'000};
  // How often agents are told to heartbeat (a fraction of agent_timeout keeps them safe).
  std::chrono::milliseconds heartbeat_interval{1'000};
  // Final jobs kept for `sabot jobs` and the API (the oldest are forgotten first).
  int32_t job_history = 100;
  // Memory budget per agent of a job whose submission names none; 0: each agent's own budget
  // (its --memory-budget-mib).
  int64_t default_memory_budget = 0;
  // How the job runner reaches the agents (TLS roots, client certificate, the token), and the
  // shuffle options of every job.
  ShuffleClientOptions client;
  ShuffleOptions shuffle;
  std::chrono::milliseconds progress_interval{500};
  // Runs each job; unset: RunDistributedJob.
  JobRunner runner;
  // The clock agents' silence is measured with; default std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
  // True: a thread calls CheckAgents() about every heartbeat_interval / 2. Tests driving a fake
  // clock set it false and call CheckAgents() themselves.
  bool monitor = true;
  // A job with checkpoints that restarts after a lost agent waits up to this long for enough
  // free slots on live agents (a replacement agent registering) before it fails with the cause.
  std::chrono::milliseconds replacement_wait{30'000};
};

// What an agent says when it registers.
struct AgentRegistrationRequest {
  std::string location;  // its Flight server, "grpc+tcp://host:port" or "grpc+tls://host:port"
  int32_t slots = 1;
  std::string name;      // its own --agent-id, for logs
  int64_t memory_budget_bytes = 0;
  int64_t memory_used_bytes = 0;
};

struct AgentRegistrationReply {
  std::string agent_id;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds agent_timeout{10000};
};

// The job manager. Jobs: created (validated, queued) -> scheduled (slots taken on live agents:
// a job takes as many slots as its largest parallelism, since a slot runs one task of each
// operator, as in Flink's slot sharing; queued jobs are placed first come, first served) ->
// running (its runner reported progress) -> finished | failed | cancelled, when the runner
// returns; its slots are then free for the next job. A lost agent cancels the runner of every
// job placed on it, which then fails naming the agent — except a job with checkpoints and
// restarts left: its runner restarts it (state restarting) on the live agents, whose slots the
// coordinator takes in place of the lost agent's, waiting up to replacement_wait for them. After a job that did not finish, the
// coordinator removes the temporary files its file sinks' tasks may have left in local
// directories (those of a lost agent, which could not abort): the coordinator sees the same
// files as its agents (one machine, or a shared filesystem).
//
// Lifecycle: Make() starts the control server (unless `serve` is false) and the monitor thread;
// Shutdown() (or the destructor) stops the server, cancels every job that has not ended, and
// joins every thread. Thread safety: every public method may be called from any thread,
// concurrently; runners and the server's threads call in too. No lock is held while a runner
// runs or a call waits.
class Coordinator : public ClusterView {
 public:
  static arrow::Result<std::unique_ptr<Coordinator>> Make(CoordinatorOptions options);
  ~Coordinator() override;

  // "grpc+tcp://host:port" (or grpc+tls) of the control server; "" without one.
  std::string location() const;

  // ClusterView.
  std::vector<AgentInfo> Agents() const override;
  std::vector<JobInfo> Jobs() const override;
  arrow::Result<JobInfo> Job(const std::string& id) const override;
  arrow::Result<std::string> Submit(const JobSubmission& job) override;
  arrow::Status Cancel(const std::string& id) override;

  // An agent joins. A live agent already registered at the same location is taken to have
  // restarted: it is declared lost (failing its jobs) and the newcomer gets a new id.
  // Invalid for a bad location or slot count.
  arrow::Result<AgentRegistrationReply> RegisterAgent(const AgentRegistrationRequest& request);
  // An agent is alive; false when the id is unknown or was declared lost (it must register
  // again).
  bool Heartbeat(const std::string& agent_id, int64_t memory_budget_bytes,
                 int64_t memory_used_bytes);
  // Declares lost every agent not heard from within agent_timeout, failing the jobs placed on
  // it, places queued jobs on agents heard from again (an agent silent for 3 heartbeat
  // intervals gets no new job until it is), and joins the threads of jobs that ended. The
  // monitor thread calls it.
  void CheckAgents();

  // Waits until job `id` has ended or `timeout` passed; its state then. KeyError for an
  // unknown id.
  arrow::Result<JobInfo> WaitForJob(const std::string& id, std::chrono::milliseconds timeout);

  // Answers a `sabot.cluster.*` control action (cluster_actions.h): the reply body.
  arrow::Result<std::string> HandleAction(std::string_view type, const std::string& body);

  arrow::Status Shutdown();

 private:
  struct AgentEntry {
    AgentInfo info;
    std::chrono::steady_clock::time_point last_seen;
  };
  struct JobEntry {
    int64_t number = 0;
    JobInfo info;
    JobSubmission submission;
    std::shared_ptr<const LogicalPlan> plan;
    int32_t slots_needed = 1;
    // Slots taken per agent id while scheduled or running.
    std::map<std::string, int32_t> slots_held;
    std::atomic<bool> cancel{false};
    bool cancel_requested = false;
    std::string cancel_reason;
    // Set when an agent the job uses is lost: the job's error.
    std::string failure;
    std::string lost_agent;
    // Every shuffle edge blocking, checkpoints off: its driver re-runs a lost agent's work
    // (lineage_recovery.h), so losing an agent does not fail it here.
    bool lineage_recoverable = false;
    std::chrono::steady_clock::time_point started;
    std::thread thread;
    bool runner_done = false;
  };

  explicit Coordinator(CoordinatorOptions options);
  std::chrono::steady_clock::time_point Now() const;
  // Places queued jobs, first come first served, while they fit; starts their runners.
  void ScheduleLocked() SABOT_REQUIRES(mutex_);
  // Fails every queued job that needs more slots than the live agents have in total (agents
  // were lost after it was accepted): it could never be placed. Called by ScheduleLocked.
  void FailUnplaceableLocked() SABOT_REQUIRES(mutex_);
  void StartRunnerLocked(JobEntry* job) SABOT_REQUIRES(mutex_);
  void RunJob(JobEntry* job);
  void FinishJob(JobEntry* job, const arrow::Result<JobReport>& result);
  void LoseAgentLocked(AgentEntry* agent, const std::string& reason) SABOT_REQUIRES(mutex_);
  // A restarting job's slots (DistributedJobOptions::replace_agents): gives up its slots on the
  // agents in `lost`, takes free slots on live agents until it holds `slots_needed`, waiting up
  // to replacement_wait; the agents it then holds. CapacityError naming the slots when they do
  // not come; Cancelled when the job is cancelled or the coordinator stops meanwhile.
  arrow::Result<std::vector<AgentEndpoint>> ReplaceAgents(JobEntry* job,
                                                          const std::vector<std::string>& lost,
                                                          int32_t slots_needed);
  // Forgets the oldest final jobs beyond job_history.
  void TrimHistoryLocked() SABOT_REQUIRES(mutex_);
  // Threads of ended jobs, taken out to be joined without the lock.
  std::vector<std::thread> TakeEndedThreadsLocked() SABOT_REQUIRES(mutex_);
  JobEntry* FindJobLocked(const std::string& id) const SABOT_REQUIRES(mutex_);
  JobInfo SnapshotLocked(const JobEntry& job) const SABOT_REQUIRES(mutex_);
  int32_t LiveSlotsLocked() const SABOT_REQUIRES(mutex_);
  void MonitorLoop();

  const CoordinatorOptions options_;
  // Serializes Shutdown (the destructor calls it again).
  std::mutex shutdown_mutex_;
  bool shut_down_ = false;
  std::unique_ptr<ShuffleServer> server_;
  std::string location_;  // set by Make

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // a job changed state, or shutdown began
  bool shutting_down_ SABOT_GUARDED_BY(mutex_) = false;
  int64_t next_agent_ SABOT_GUARDED_BY(mutex_) = 1;
  int64_t next_job_ SABOT_GUARDED_BY(mutex_) = 1;
  // Registration order.
  std::vector<std::unique_ptr<AgentEntry>> agents_ SABOT_GUARDED_BY(mutex_);
  // By job number; the newest last.
  std::map<int64_t, std::unique_ptr<JobEntry>> jobs_ SABOT_GUARDED_BY(mutex_);
  std::deque<int64_t> queue_ SABOT_GUARDED_BY(mutex_);
  // Jobs that ended and whose runner thread is still to be joined.
  std::vector<std::unique_ptr<JobEntry>> forgotten_ SABOT_GUARDED_BY(mutex_);
  std::thread monitor_;
};

}  // namespace sabot
