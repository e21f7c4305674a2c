#include "sabot/runtime/distributed_job.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <arrow/flight/types.h>

#include "sabot/common/ids.h"
#include "sabot/common/logging.h"
#include "sabot/dataflow/checkpoint_storage.h"
#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/operator_binding.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/dataflow/stall_detector.h"
#include "sabot/dataflow/task_runner.h"
#include "sabot/runtime/control_actions.h"
#include "sabot/runtime/lineage_recovery.h"
#include "sabot/runtime/task_placement.h"

namespace sabot {

namespace {

using Clock = std::chrono::steady_clock;

// How often the driver asks every agent for its tasks' status: every kFirstStatusPoll at first,
// then each pause kStatusPollGrowth times the last, up to kStatusPoll. The end of a job is seen
// at most about a quarter of its running time late (a fixed 100 ms pause made a short job wait
// up to 100 ms after its last task finished), for a few dozen cheap status calls per agent
// until the pause reaches kStatusPoll.
constexpr std::chrono::microseconds kFirstStatusPoll{2000};
constexpr double kStatusPollGrowth = 1.25;
constexpr std::chrono::milliseconds kStatusPoll{100};

// How often a wait for a deploy or commit call looks at the cancel flag.
constexpr std::chrono::milliseconds kCancelCheck{20};

// A checkpoint whose acks did not all come within this many intervals (and at least
// kMinCheckpointTimeout) is abandoned: its files are removed and the next one is triggered.
constexpr int kCheckpointTimeoutIntervals = 10;
constexpr std::chrono::milliseconds kMinCheckpointTimeout{std::chrono::seconds(10)};

// One action call running on a thread of its own (LongCall). Shared by that thread and the
// driver: the driver may stop waiting (a cancel) and leave, the thread ends at the call's
// deadline at the latest and drops its share.
struct PendingCall {
  std::mutex mutex;
  std::condition_variable done_changed;
  bool done = false;
  arrow::Result<std::string> reply = arrow::Status::UnknownError("no reply yet");
};

std::string LowerCase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One agent's part of the job, as the driver tracks it.
struct AgentRun {
  const AgentEndpoint* endpoint = nullptr;
  std::vector<int64_t> tasks;  // graph task indices
  bool deployed = false;
  bool lost = false;
  Clock::time_point last_answer;
  arrow::Status last_error;  // of the last call that did not answer
  std::optional<JobStatusReport> status;
  // A failure (not a cancel) was reported without its task: an agent's status is read while a
  // task fails, so the failure may show before the task's flag. Taken as it is at the next poll
  // (a few ms later) if the task is still not named then.
  bool unnamed_failure_seen = false;
};

class Driver {
 public:
  Driver(const LogicalPlan& plan, const std::vector<AgentEndpoint>& agents,
         const DistributedJobOptions& options, ExecutionGraph graph)
      : plan_(plan),
        agents_(agents),
        options_(options),
        graph_(std::move(graph)),
        job_id_(options.job_id) {}

  arrow::Result<JobReport> Run();

 private:
  std::string AgentLabel(const AgentRun& run) const {
    return "agent '" + run.endpoint->id + "' (" + run.endpoint->location + ")";
  }
  std::string TaskLabel(int64_t t) const {
    const TaskSpec& task = graph_.tasks()[t];
    return "task " + std::to_string(task.subtask) + " of '" + graph_.chains()[task.chain].name +
           "'";
  }
  // `long_call`: an action whose work may take a while on the agent (binding the plan: reading
  // file metadata; a commit phase: a verify sink's final count, renames), bounded by the client's
  // call timeout instead of the agent timeout.
  arrow::Result<std::string> Call(AgentRun* run, std::string_view action,
                                  const ControlMessage& body) {
    auto reply = client_->Action(run->endpoint->location, action, body.Encode());
    if (reply.ok()) run->last_answer = Clock::now();
    return reply;
  }
  // A deploy or commit call: bounded by long_call_timeout_ (the agent is lost when it does not
  // answer by then), and, when `cancellable`, given up as soon as the cancel flag is set
  // (Cancelled). Flight cannot interrupt a DoAction waiting for its answer, so the call runs on
  // a detached thread that owns everything it touches; a call given up ends there by its
  // deadline. Touches only `run`: calls for distinct runs may go at once.
  arrow::Result<std::string> LongCall(AgentRun* run, std::string_view action,
                                      const ControlMessage& body, bool cancellable);
  // Places the graph's tasks on agents_ and makes runs_ (a fresh attempt's).
  arrow::Status Place();
  arrow::Status Deploy();
  // Checkpoints (storage_ set): triggers the next one when due, collects the acks of the one
  // pending from the last poll, completes or abandons it.
  void Checkpoint();
  // Sends `action` naming checkpoint `id` to every deployed agent still answering.
  void SendCheckpoint(std::string_view action, CheckpointId id);
  // Removes the pending checkpoint's files; `failed`: it failed (logged and counted), else it
  // was given up (the attempt ended).
  void AbandonCheckpoint(const std::string& why, bool failed = true);
  // At the job's end, once every agent released it (its groups, and their snapshot writes in
  // flight, are gone): removes a checkpoint still pending.
  void GiveUpPendingCheckpoint() {
    if (storage_ != nullptr) AbandonCheckpoint("the job ended before it completed", false);
  }
  // After failure_: true when the job may restart (checkpoints on, restarts left, not
  // cancelled); then aborts, waits the delay, finds agents and redeploys from the latest valid
  // checkpoint, as a new attempt. On return false failure_ is the job's error.
  bool Restart();
  // Polls every agent once; sets failure_ on a task failure or a lost agent. True when every
  // task of every agent finished.
  bool Poll();
  arrow::Status Commit();
  // Aborts the job on every agent still answering.
  void AbortAll(const arrow::Status& cause);
  void ReleaseAll();
  JobInfo Info() const;
  void Progress(Clock::time_point* next_progress);
  JobReport Report() const;
  std::vector<EdgeReport> EdgeFigures() const;
  std::vector<OperatorReport> OperatorFigures() const;
  void Fail(arrow::Status cause) {
    if (failure_.ok()) failure_ = std::move(cause);
  }
  // `run`'s agent is lost: the job fails naming it and its tasks.
  void MarkLost(AgentRun* run) {
    run->lost = true;
    // A blocking batch job re-runs the agent's lost work instead (RecoverLineage).
    if (lineage_) {
      lineage_pending_ = true;
      return;
    }
    std::string tasks;
    for (int64_t t : run->tasks) tasks += (tasks.empty() ? "" : ", ") + TaskLabel(t);
    Fail(arrow::Status::IOError(
        "job '", options_.job_id, "' failed: ", AgentLabel(*run), " is lost (it did not answer; ",
        "last error: ", run->last_error.ToString(), ") with its tasks ", tasks));
  }

  const LogicalPlan& plan_;
  std::vector<AgentEndpoint> agents_;  // this attempt's
  const DistributedJobOptions& options_;
  const ExecutionGraph graph_;
  std::string job_id_;  // this attempt's: options_.job_id, then "<job id>-a<attempt>"
  // Checkpoints: null when the plan's are off.
  std::shared_ptr<CheckpointStorage> storage_;
  CheckpointId next_checkpoint_ = kNoCheckpoint;
  CheckpointId first_checkpoint_ = kNoCheckpoint;  // this run's first (older ones: other runs)
  CheckpointId pending_ = kNoCheckpoint;
  Clock::time_point pending_since_;
  Clock::time_point next_trigger_;
  std::map<int64_t, SnapshotAck> acks_;  // of pending_, by graph task
  std::string pending_failure_;  // the first task's error for pending_ (empty: none yet)
  JobRecovery recovery_;
  int64_t last_checkpoint_bytes_ = 0;                 // of the newest complete checkpoint
  std::chrono::nanoseconds last_checkpoint_duration_{0};  // its trigger to its manifest
  int32_t slots_needed_ = 0;
  const Clock::time_point start_ = Clock::now();
  std::unique_ptr<ShuffleClient> client_;       // calls answered within the agent timeout
  std::shared_ptr<ShuffleClient> long_client_;  // deploy and commit (LongCall)
  std::chrono::milliseconds long_call_timeout_{0};
  std::string plan_json_;
  std::vector<int32_t> task_agent_;  // per graph task: the index of its agent in agents_
  std::vector<AgentRun> runs_;       // parallel to agents_
  JobState state_ = JobState::kCreated;
  arrow::Status failure_;
  int64_t failed_task_ = -1;
  std::optional<StallDetector> stall_{std::in_place, options_.stall_timeout, Clock::now()};
  // Lineage recovery of blocking batch jobs (lineage_recovery.h): on when the job qualifies;
  // set when an agent was lost since the last recovery; each task's attempt; recoveries so far;
  // the first deployment (its fields are reused for re-runs); one line per task run again.
  bool lineage_ = false;
  bool lineage_pending_ = false;
  std::vector<int32_t> task_attempt_;
  int32_t lineage_restarts_ = 0;
  TaskDeployment base_deployment_;
  std::vector<std::string> reruns_;
  std::vector<bool> lineage_told_;  // per agent: a lost agent was told to abort the job
  // Re-runs the work of the agents lost since the last call (lineage_recovery.h); an error when
  // the job cannot recover (restarts exhausted, no live agent, a deployment refused).
  // `published`: the loss came in commit phase 2 or 3, after parts were renamed.
  arrow::Status RecoverLineage(bool published = false);
  // Commits the job (Commit); a failure fails it (true), except in a lineage-recoverable job
  // whose agent stopped answering: that agent is lost, its work runs again (RecoverLineage) and
  // the job commits again once it is done (false: poll again); agents commit each group's phase
  // once, so what was published stays and the re-runs publish theirs.
  bool CommitOrRecover();
  // The phase and agent of the last failed commit call (-1: none).
  int commit_failed_phase_ = -1;
  size_t commit_failed_agent_ = 0;
};

arrow::Result<std::string> Driver::LongCall(AgentRun* run, std::string_view action,
                                            const ControlMessage& body, bool cancellable) {
  auto pending = std::make_shared<PendingCall>();
  std::thread([pending, client = long_client_, location = run->endpoint->location,
               action = std::string(action), encoded = body.Encode()] {
    auto reply = client->Action(location, action, encoded);
    std::lock_guard<std::mutex> lock(pending->mutex);
    pending->reply = std::move(reply);
    pending->done = true;
    pending->done_changed.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(pending->mutex);
  while (!pending->done) {
    if (cancellable && options_.cancel != nullptr && options_.cancel->load()) {
      return arrow::Status::Cancelled("job '", options_.job_id, "' was cancelled while ",
                                      action, " waited for ", AgentLabel(*run));
    }
    pending->done_changed.wait_for(lock, kCancelCheck);
  }
  if (pending->reply.ok()) {
    run->last_answer = Clock::now();
    return std::move(pending->reply);
  }
  run->last_error = pending->reply.status();
  auto detail = arrow::flight::FlightStatusDetail::UnwrapStatus(pending->reply.status());
  if (detail != nullptr && detail->code() == arrow::flight::FlightStatusCode::TimedOut) {
    // No answer by the deadline: the agent is lost (stopped, or stuck), not merely slow.
    run->lost = true;
    return arrow::Status::IOError(AgentLabel(*run), " is lost: it did not answer ", action,
                                  " within ", long_call_timeout_.count(),
                                  " ms (last error: ", pending->reply.status().ToString(), ")");
  }
  return pending->reply.status();
}

arrow::Status Driver::Deploy() {
  state_ = JobState::kScheduled;
  TaskDeployment deployment;
  deployment.job_id = job_id_;
  deployment.plan_json = plan_json_;
  deployment.memory_budget = options_.memory_budget;
  deployment.state_budget_per_task = options_.state_budget_per_task;
  deployment.shuffle = options_.shuffle;
  deployment.threads = options_.threads;
  // Stalls are judged over the whole job, here (Poll): no agent alone can tell.
  deployment.stall_timeout_ms = 0;
  for (const AgentEndpoint& agent : agents_) deployment.agents.push_back(agent.location);
  deployment.task_agents.assign(task_agent_.begin(), task_agent_.end());
  deployment.lineage = lineage_;
  base_deployment_ = deployment;
  if (storage_ != nullptr) {
    deployment.checkpoint_job = options_.job_id;
    deployment.checkpoint_directory = plan_.options().checkpoint.directory;
    deployment.checkpoint_retained = plan_.options().checkpoint.retained;
    deployment.restore_checkpoint = recovery_.restored_checkpoint;
  }
  for (AgentRun& run : runs_) {
    if (run.tasks.empty()) continue;
    deployment.tasks = run.tasks;
    ControlMessage request;
    PutTaskDeployment(deployment, &request);
    auto reply = LongCall(&run, kActionDeployTasks, request, /*cancellable=*/true);
    if (!reply.ok()) {
      if (reply.status().IsCancelled()) return reply.status();
      return reply.status().WithMessage("job '", options_.job_id, "': deploying ",
                                        run.tasks.size(), " tasks on ", AgentLabel(run),
                                        " failed: ", reply.status().message());
    }
    run.deployed = true;
  }
  state_ = JobState::kRunning;
  return arrow::Status::OK();
}

bool Driver::Poll() {
  std::vector<std::pair<int32_t, int32_t>> shapes;
  for (size_t e : graph_.shuffle_edges()) {
    shapes.emplace_back(graph_.edges()[e].num_writers, graph_.edges()[e].num_partitions);
  }
  bool all_done = true;
  // What caused a failure, most likely first: an agent that stopped answering (its tasks' readers
  // and writers elsewhere fail as a consequence); an agent whose tasks were stopped from outside
  // (a Cancelled failure no task of it raised: the agent shuts down); a task's own error; any
  // other failure (usually a consequence of one of those).
  AgentRun* unreachable = nullptr;
  std::optional<std::pair<AgentRun*, JobStatusReport*>> stopped, own, other;
  for (AgentRun& run : runs_) {
    if (!run.deployed || run.lost) continue;
    ControlMessage request;
    request.Set("job_id", job_id_);
    auto reply = Call(&run, kActionJobStatus, request);
    arrow::Result<JobStatusReport> status =
        reply.ok() ? [&]() -> arrow::Result<JobStatusReport> {
          ARROW_ASSIGN_OR_RAISE(auto message, ControlMessage::Decode(*reply));
          return GetJobStatus(message, shapes);
        }()
                   : arrow::Result<JobStatusReport>(reply.status());
    if (!status.ok()) {
      run.last_error = status.status();
      all_done = false;
      if (unreachable == nullptr) unreachable = &run;
      if (Clock::now() - run.last_answer >= options_.agent_timeout) MarkLost(&run);
      continue;
    }
    run.status = std::move(*status);
    if (!run.status->done) all_done = false;
    const arrow::Status& failure = run.status->failure;
    if (failure.ok()) continue;
    if (!failure.IsCancelled() && run.status->failed_task < 0 && !run.unnamed_failure_seen) {
      run.unnamed_failure_seen = true;
      all_done = false;
      continue;
    }
    if (failure.IsCancelled() && run.status->failed_task < 0) {
      if (!stopped) stopped.emplace(&run, &*run.status);
    } else if (run.status->failed_task >= 0 && !failure.IsCancelled()) {
      if (!own) own.emplace(&run, &*run.status);
    } else if (!other) {
      other.emplace(&run, &*run.status);
    }
  }
  if (!failure_.ok()) return all_done;
  const bool failed = stopped || own || other;
  if (!failed && unreachable == nullptr) {
    int64_t signature = 0;
    bool busy = false;
    for (const AgentRun& run : runs_) {
      if (!run.status) continue;
      signature += run.status->signature;
      busy = busy || run.status->busy;
    }
    if (stall_->Observe(signature, busy, Clock::now())) {
      Fail(arrow::Status::IOError(
          "job '", options_.job_id, "' made no progress for ", options_.stall_timeout.count(),
          " ms on any of its agents (no rows moved, no task finished): raise the memory budget "
          "or lower the parallelism"));
    }
  }
  if (failed && unreachable != nullptr && !lineage_) {
    // The job fails while an agent does not answer: its loss is the likeliest cause.
    MarkLost(unreachable);
    return all_done;
  }
  auto chosen = stopped ? stopped : own ? own : other;
  if (chosen) {
    AgentRun* run = chosen->first;
    const JobStatusReport* status = chosen->second;
    failed_task_ = status->failed_task;
    std::string where =
        status->failed_task >= 0 ? TaskLabel(status->failed_task) + " on " : std::string();
    Fail(status->failure.WithMessage("job '", options_.job_id, "' failed: ", where,
                                     AgentLabel(*run), ": ", status->failure.message()));
  }
  return all_done;
}

arrow::Status Driver::Commit() {
  for (int phase = 0; phase < TaskRunner::kCommitPhases; ++phase) {
    // Phase 0 (verify sinks' final checks, each agent's own partitions: real work) runs on
    // every agent at once, each call on a thread of its own touching only its agent's run. The
    // later phases go one agent after the other: on one machine the agents' file sinks share
    // their directories, and two agents removing an earlier run's parts at once would race.
    // The next phase starts once all answered; the first failure in agent order is reported.
    std::vector<arrow::Status> statuses(runs_.size());
    auto commit = [this, phase, &statuses](size_t a) {
      ControlMessage request;
      request.Set("job_id", job_id_);
      request.SetInt("phase", phase);
      // Phase 0 only checks (verify sinks): a cancel may stop it. Later phases publish output;
      // given up half way they would leave part of it, so they run to their answer or deadline.
      statuses[a] =
          LongCall(&runs_[a], kActionCommitJob, request, /*cancellable=*/phase == 0).status();
    };
    std::vector<std::thread> calls;
    for (size_t a = 0; a < runs_.size(); ++a) {
      if (!runs_[a].deployed || runs_[a].lost) continue;
      if (phase == 0) {
        calls.emplace_back(commit, a);
      } else {
        commit(a);
        if (!statuses[a].ok()) break;
      }
    }
    for (std::thread& call : calls) call.join();
    for (size_t a = 0; a < runs_.size(); ++a) {
      if (statuses[a].IsCancelled()) return statuses[a];
    }
    for (size_t a = 0; a < runs_.size(); ++a) {
      if (!statuses[a].ok()) {
        commit_failed_phase_ = phase;
        commit_failed_agent_ = a;
        return statuses[a].WithMessage("job '", options_.job_id, "' failed to commit on ",
                                       AgentLabel(runs_[a]), ": ", statuses[a].message());
      }
    }
  }
  return arrow::Status::OK();
}

void Driver::AbortAll(const arrow::Status& cause) {
  for (AgentRun& run : runs_) {
    if (!run.deployed || run.lost) continue;
    ControlMessage request;
    request.Set("job_id", job_id_);
    request.Set("reason", cause.message());
    (void)Call(&run, kActionAbortJob, request);
  }
}

void Driver::ReleaseAll() {
  for (AgentRun& run : runs_) {
    if (run.lost) continue;
    ControlMessage request;
    request.Set("job_id", job_id_);
    (void)Call(&run, kActionReleaseJob, request);
  }
}

std::vector<OperatorReport> Driver::OperatorFigures() const {
  std::map<OperatorId, OperatorReport> by_id;
  for (const OperatorSpec& spec : plan_.operators()) {
    if (spec.kind() == OperatorKind::kKeyBy) continue;
    OperatorReport& report = by_id[spec.id];
    report.id = spec.id;
    report.name = spec.name;
    report.kind = spec.kind();
    report.parallelism = spec.parallelism;
  }
  std::map<OperatorId, bool> seen;
  for (const AgentRun& run : runs_) {
    if (!run.status) continue;
    for (size_t i = 0; i < run.status->operators.size(); ++i) {
      const OperatorReport& part = run.status->operators[i];
      auto it = by_id.find(part.id);
      if (it == by_id.end()) continue;
      OperatorReport& report = it->second;
      report.rows_in += part.rows_in;
      report.rows_out += part.rows_out;
      report.busy += part.busy;
      report.late_rows += part.late_rows;
      report.state_spilled_bytes += part.state_spilled_bytes;
      report.watermark = seen[part.id] ? std::min(report.watermark, part.watermark)
                                       : part.watermark;
      seen[part.id] = true;
    }
  }
  std::vector<OperatorReport> operators;
  for (const OperatorSpec& spec : plan_.operators()) {
    if (spec.kind() == OperatorKind::kKeyBy) continue;
    operators.push_back(by_id[spec.id]);
  }
  return operators;
}

std::vector<EdgeReport> Driver::EdgeFigures() const {
  std::vector<EdgeReport> edges;
  for (size_t k = 0; k < graph_.shuffle_edges().size(); ++k) {
    const GraphEdge& edge = graph_.edges()[graph_.shuffle_edges()[k]];
    EdgeReport report;
    report.shuffle_id = edge.shuffle_id;
    report.from = plan_.FindOperator(edge.from_operator)->name;
    report.to = plan_.FindOperator(edge.to_operator)->name;
    report.type = LowerCase(EdgeTypeName(edge.type));
    report.num_writers = edge.num_writers;
    report.num_partitions = edge.num_partitions;
    report.rows.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
    report.writer_blocked.assign(edge.num_writers, std::chrono::nanoseconds(0));
    report.channel_bytes.assign(edge.num_writers, std::vector<int64_t>(edge.num_partitions, 0));
    for (const AgentRun& run : runs_) {
      if (!run.status || k >= run.status->edges.size()) continue;
      const EdgeReport& part = run.status->edges[k];
      report.bytes += part.bytes;
      report.bytes_spilled += part.bytes_spilled;
      report.blocks_spilled += part.blocks_spilled;
      report.blocked += part.blocked;
      for (int32_t i = 0; i < edge.num_writers; ++i) {
        for (int32_t j = 0; j < edge.num_partitions; ++j) {
          report.rows[i][j] += part.rows[i][j];
          report.channel_bytes[i][j] += part.channel_bytes[i][j];
        }
        report.writer_blocked[i] += part.writer_blocked[i];
      }
    }
    edges.push_back(std::move(report));
  }
  return edges;
}

JobInfo Driver::Info() const {
  JobInfo info;
  info.id = options_.job_id;
  info.name = options_.job_id;
  info.state = state_;
  info.error = failure_.ok() ? "" : failure_.message();
  info.plan_json = plan_json_;
  // Per task: its agent, and its state from that agent's last status.
  std::map<int64_t, std::pair<bool, std::pair<int64_t, int64_t>>> reported;
  for (size_t a = 0; a < runs_.size(); ++a) {
    const AgentRun& run = runs_[a];
    if (!run.status) continue;
    for (size_t i = 0; i < run.status->task_index.size(); ++i) {
      // A task run again elsewhere (lineage recovery): its current agent's status counts.
      const int64_t t = run.status->task_index[i];
      if (t >= 0 && static_cast<size_t>(t) < task_agent_.size() &&
          task_agent_[t] != static_cast<int32_t>(a)) {
        continue;
      }
      reported[run.status->task_index[i]] = {
          run.status->task_finished[i] != 0,
          {run.status->task_rows_in[i], run.status->task_rows_out[i]}};
    }
  }
  for (size_t t = 0; t < graph_.tasks().size(); ++t) {
    const TaskSpec& spec = graph_.tasks()[t];
    TaskInfo task;
    task.chain = spec.chain;
    task.subtask = spec.subtask;
    task.operator_name = graph_.chains()[spec.chain].name;
    const AgentRun& run = runs_[task_agent_[t]];
    task.agent_id = run.endpoint->id;
    task.agent_location = run.endpoint->location;
    task.state = run.deployed ? TaskState::kRunning : TaskState::kScheduled;
    auto it = reported.find(static_cast<int64_t>(t));
    if (it != reported.end()) {
      task.rows_in = it->second.second.first;
      task.rows_out = it->second.second.second;
      if (it->second.first) task.state = TaskState::kFinished;
    }
    if (!failure_.ok()) {
      if (static_cast<int64_t>(t) == failed_task_ || run.lost) {
        task.state = TaskState::kFailed;
        task.error = failure_.message();
      } else if (task.state != TaskState::kFinished || state_ == JobState::kFailed ||
                 state_ == JobState::kCancelled) {
        task.state = TaskState::kCancelled;
        task.error = "cancelled: " + failure_.message();
      }
    }
    info.tasks.push_back(std::move(task));
  }
  info.operators = OperatorFigures();
  info.edges = EdgeFigures();
  for (const AgentRun& run : runs_) {
    if (!run.status) continue;
    info.peak_memory_bytes += run.status->peak_memory_bytes;
    info.memory_budget_bytes += run.status->memory_budget_bytes;
  }
  info.elapsed = Clock::now() - start_;
  info.recovery = recovery_;
  return info;
}

void Driver::Progress(Clock::time_point* next_progress) {
  if (!options_.on_progress || Clock::now() < *next_progress) return;
  *next_progress = Clock::now() + options_.progress_interval;
  options_.on_progress(Info());
}

JobReport Driver::Report() const {
  JobReport report;
  report.job_id = options_.job_id;
  report.operators = OperatorFigures();
  std::vector<EdgeReport> shuffles = EdgeFigures();
  size_t next = 0;
  for (const GraphEdge& edge : graph_.edges()) {
    if (!edge.chained) {
      report.edges.push_back(std::move(shuffles[next++]));
      continue;
    }
    EdgeReport chained;
    chained.from = plan_.FindOperator(edge.from_operator)->name;
    chained.to = plan_.FindOperator(edge.to_operator)->name;
    chained.type = LowerCase(EdgeTypeName(edge.type));
    chained.chained = true;
    chained.num_writers = edge.num_writers;
    chained.num_partitions = edge.num_partitions;
    report.edges.push_back(std::move(chained));
  }
  for (const AgentRun& run : runs_) {
    if (!run.status) continue;
    report.peak_memory_bytes += run.status->peak_memory_bytes;
    report.memory_budget_bytes += run.status->memory_budget_bytes;
  }
  report.wall = Clock::now() - start_;
  report.checkpoints.completed = recovery_.checkpoints_completed;
  report.checkpoints.failed = recovery_.checkpoints_failed;
  report.checkpoints.last_id = recovery_.last_checkpoint;
  report.checkpoints.last_duration = last_checkpoint_duration_;
  report.checkpoints.last_bytes = last_checkpoint_bytes_;
  report.checkpoints.restarts = recovery_.restarts;
  report.checkpoints.restored_from = recovery_.restored_checkpoint;
  return report;
}

arrow::Status Driver::RecoverLineage(bool published) {
  std::string lost;
  for (const AgentRun& run : runs_) {
    if (run.lost) lost += (lost.empty() ? "" : ", ") + AgentLabel(run);
  }
  const CheckpointOptions& restart = plan_.options().checkpoint;
  if (lineage_restarts_ >= restart.max_restarts) {
    return arrow::Status::IOError("job '", options_.job_id, "' failed: lost ", lost,
                                  " after ", lineage_restarts_,
                                  " recoveries (the restart strategy allows ",
                                  restart.max_restarts, ")");
  }
  std::vector<const JobStatusReport*> statuses;
  std::vector<bool> live;
  for (const AgentRun& run : runs_) {
    statuses.push_back(run.status ? &*run.status : nullptr);
    live.push_back(!run.lost);
  }
  LineageState state = MakeLineageState(task_agent_, task_attempt_, statuses, live);
  auto planned = PlanLineageRecovery(graph_, state);
  if (!planned.ok()) {
    return planned.status().WithMessage("job '", options_.job_id, "' failed: lost ", lost, ": ",
                                        planned.status().message());
  }
  if (published) {
    // Parts were renamed already: a re-run sink task must go where a task of its sink ran and
    // prepared the commit (its agent removed an earlier run's parts then, and only then), so
    // that preparing it again removes nothing this job published.
    for (const LineageRerun& rerun : planned->reruns) {
      const int32_t chain = graph_.tasks()[rerun.task].chain;
      if (!ChainHasSink(graph_, chain)) continue;
      bool prepared = false;
      for (size_t t = 0; t < graph_.tasks().size(); ++t) {
        prepared = prepared || (graph_.tasks()[t].chain == chain && task_agent_[t] == rerun.agent);
      }
      if (!prepared) {
        return arrow::Status::IOError("job '", options_.job_id, "' failed: lost ", lost,
                                      " while its output was being published, and ",
                                      TaskLabel(rerun.task), " cannot run again on ",
                                      AgentLabel(runs_[rerun.agent]),
                                      " (no task of its sink ran there)");
      }
    }
  }
  const std::chrono::milliseconds delay = LineageRestartDelay(restart, lineage_restarts_);
  ++lineage_restarts_;
  const std::vector<std::string> lines = planned->Describe(graph_);
  std::string listed;
  for (size_t r = 0; r < lines.size(); ++r) {
    listed += (r == 0 ? ": " : "; ") + lines[r] + " ('" +
              agents_[planned->reruns[r].agent].id + "')";
  }
  SABOT_LOG(kWarning) << "job '" << options_.job_id << "': lost " << lost << "; lineage recovery "
                      << lineage_restarts_ << " of at most " << restart.max_restarts << " in "
                      << delay.count() << " ms: running " << planned->reruns.size()
                      << " tasks again" << listed;
  for (auto until = Clock::now() + delay; Clock::now() < until;) {
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return arrow::Status::Cancelled("job '", options_.job_id, "' was cancelled");
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(kCancelCheck, until - Clock::now()));
  }
  // A lost agent may only be unreachable, not dead: it is told to abort the job (best effort)
  // before its tasks run again elsewhere, so that it neither writes their files meanwhile nor
  // removes the new attempts' files later.
  lineage_told_.resize(runs_.size(), false);
  for (size_t a = 0; a < runs_.size(); ++a) {
    if (!runs_[a].lost || lineage_told_[a]) continue;
    lineage_told_[a] = true;
    ControlMessage request;
    request.Set("job_id", options_.job_id);
    request.Set("reason", "the driver lost contact with this agent; its tasks run elsewhere");
    (void)Call(&runs_[a], kActionAbortJob, request);
  }
  LineageMessages messages = ApplyLineagePlan(*planned, base_deployment_, &state);
  for (size_t r = 0; r < planned->reruns.size(); ++r) {
    const LineageRerun& rerun = planned->reruns[r];
    std::erase(runs_[task_agent_[rerun.task]].tasks, rerun.task);
    runs_[rerun.agent].tasks.push_back(rerun.task);
    task_agent_[rerun.task] = rerun.agent;
    task_attempt_[rerun.task] = rerun.attempt;
    reruns_.push_back(lines[r] + " ('" + agents_[rerun.agent].id + "')");
  }
  for (auto& [agent, deployment] : messages.deployments) {
    AgentRun& run = runs_[agent];
    ControlMessage request;
    PutTaskDeployment(deployment, &request);
    auto reply = LongCall(&run, kActionDeployTasks, request, /*cancellable=*/true);
    if (!reply.ok()) {
      if (reply.status().IsCancelled()) return reply.status();
      return reply.status().WithMessage("job '", options_.job_id, "': running ",
                                        deployment.tasks.size(), " tasks again on ",
                                        AgentLabel(run), " failed: ", reply.status().message());
    }
    run.deployed = true;
  }
  // Readers of the re-run writers elsewhere switch to the new attempts.
  ControlMessage relocation;
  PutWriterRelocations(messages.relocation, &relocation);
  for (AgentRun& run : runs_) {
    if (!run.deployed || run.lost) continue;
    auto reply = Call(&run, kActionRelocateWriters, relocation);
    // An agent that does not answer is found lost by the next polls (and recovered from).
    if (!reply.ok()) run.last_error = reply.status();
  }
  return arrow::Status::OK();
}

bool Driver::CommitOrRecover() {
  commit_failed_phase_ = -1;
  arrow::Status committed = Commit();
  if (committed.ok()) return true;
  if (lineage_ && !committed.IsCancelled() && commit_failed_phase_ >= 0) {
    AgentRun& run = runs_[commit_failed_agent_];
    ControlMessage probe;
    probe.Set("job_id", options_.job_id);
    if (run.lost || !Call(&run, kActionJobStatus, probe).ok()) {
      run.lost = true;
      SABOT_LOG(kWarning) << "job '" << options_.job_id << "': " << AgentLabel(run)
                          << " stopped answering in commit phase " << commit_failed_phase_;
      arrow::Status recovered = RecoverLineage(/*published=*/commit_failed_phase_ >= 2);
      if (recovered.ok()) return false;
      Fail(std::move(recovered));
      return true;
    }
  }
  Fail(std::move(committed));
  return true;
}

arrow::Status Driver::Place() {
  std::vector<PlacementAgent> placement_agents;
  for (const AgentEndpoint& agent : agents_) placement_agents.push_back({agent.id, agent.slots});
  ARROW_ASSIGN_OR_RAISE(TaskPlacement placement, PlaceTasks(graph_, placement_agents));
  runs_.clear();
  task_agent_.clear();
  runs_.resize(agents_.size());
  for (size_t a = 0; a < agents_.size(); ++a) {
    runs_[a].endpoint = &agents_[a];
    runs_[a].last_answer = Clock::now();
  }
  lineage_ = CheckLineageRecoverable(graph_).ok();
  task_attempt_.assign(graph_.tasks().size(), 0);
  for (size_t t = 0; t < graph_.tasks().size(); ++t) {
    const TaskSpec& task = graph_.tasks()[t];
    const int32_t agent = placement.task_agent[task.chain][task.subtask];
    task_agent_.push_back(agent);
    runs_[agent].tasks.push_back(static_cast<int64_t>(t));
  }
  return arrow::Status::OK();
}

void Driver::SendCheckpoint(std::string_view action, CheckpointId id) {
  for (AgentRun& run : runs_) {
    if (!run.deployed || run.lost) continue;
    ControlMessage request;
    request.Set("job_id", job_id_);
    request.SetInt("checkpoint_id", id);
    // A call that fails is the agent's loss or its job's end: the status polls judge both.
    auto reply = Call(&run, action, request);
    if (!reply.ok()) run.last_error = reply.status();
  }
}

void Driver::AbandonCheckpoint(const std::string& why, bool failed) {
  if (pending_ == kNoCheckpoint) return;
  if (failed) {
    SABOT_LOG(kWarning) << "job " << options_.job_id << ": checkpoint " << pending_
                        << " failed: " << why;
    ++recovery_.checkpoints_failed;
  }
  arrow::Status removed = storage_->Abort(pending_);
  if (!removed.ok()) {
    SABOT_LOG(kWarning) << "job " << options_.job_id << ": removing failed checkpoint "
                        << pending_ << ": " << removed.ToString();
  }
  pending_ = kNoCheckpoint;
  pending_failure_.clear();
  acks_.clear();
}

void Driver::Checkpoint() {
  const Clock::time_point now = Clock::now();
  bool all_reported = true;
  for (const AgentRun& run : runs_) all_reported = all_reported && (run.tasks.empty() || run.status);
  if (pending_ != kNoCheckpoint) {
    for (const AgentRun& run : runs_) {
      if (!run.status) continue;
      for (const SnapshotAck& ack : run.status->snapshots) {
        if (ack.id != pending_) continue;
        const bool known = ack.task >= 0 && ack.task < static_cast<int64_t>(graph_.tasks().size());
        if (!ack.error.ok()) {
          const std::string why = (known ? TaskLabel(ack.task) + ": " : std::string()) +
                                  ack.error.ToString();
          // Of no known task: nothing tells when the others' writes end; given up now.
          if (!known) {
            AbandonCheckpoint(why);
            return;
          }
          if (pending_failure_.empty()) pending_failure_ = why;
        }
        if (known) acks_[ack.task] = ack;
      }
    }
    // A failed checkpoint is removed only once every task reported (an ack or an error): then no
    // snapshot write of it is in flight on any agent (one would recreate its directory).
    if (acks_.size() == graph_.tasks().size() && !pending_failure_.empty()) {
      AbandonCheckpoint(pending_failure_);
      return;
    }
    if (acks_.size() == graph_.tasks().size()) {
      std::vector<TaskSnapshot> snapshots;
      for (const auto& [t, ack] : acks_) {
        TaskSnapshot snapshot;
        snapshot.chain = graph_.tasks()[t].chain;
        snapshot.subtask = graph_.tasks()[t].subtask;
        snapshot.id = pending_;
        snapshot.finished = ack.finished;
        for (const SnapshotAckFile& file : ack.files) {
          snapshot.files.push_back({file.path, file.bytes, file.crc32c});
        }
        snapshots.push_back(std::move(snapshot));
      }
      auto manifest = storage_->Complete(pending_, std::move(snapshots));
      if (!manifest.ok()) {
        AbandonCheckpoint("committing its manifest: " + manifest.status().ToString());
        return;
      }
      const CheckpointId id = pending_;
      last_checkpoint_bytes_ = manifest->bytes();
      last_checkpoint_duration_ = now - pending_since_;
      pending_ = kNoCheckpoint;
      acks_.clear();
      ++recovery_.checkpoints_completed;
      recovery_.last_checkpoint = id;
      SendCheckpoint(kActionCheckpointComplete, id);
    } else {
      const auto timeout = std::max<std::chrono::milliseconds>(
          kMinCheckpointTimeout, kCheckpointTimeoutIntervals * plan_.options().checkpoint.interval);
      if (now - pending_since_ > timeout) {
        AbandonCheckpoint("not every task acked it within " + std::to_string(timeout.count()) +
                          " ms (" + std::to_string(acks_.size()) + " of " +
                          std::to_string(graph_.tasks().size()) + ")");
      }
      return;
    }
  }
  if (now < next_trigger_ || !all_reported) return;
  pending_ = next_checkpoint_++;
  pending_since_ = now;
  next_trigger_ = now + plan_.options().checkpoint.interval;
  acks_.clear();
  // To every agent: its source tasks inject the barrier, and its tasks that ended already ack
  // the checkpoint as ended (they take no barrier any more).
  SendCheckpoint(kActionTriggerCheckpoint, pending_);
}

bool Driver::Restart() {
  if (storage_ == nullptr || (options_.cancel != nullptr && options_.cancel->load())) {
    return false;
  }
  // What a restart cannot cure fails the job at once: a plan the agents refuse (Invalid: a
  // blocking edge under checkpoints, a checkpoint that does not match the plan) and an operator
  // or source that cannot checkpoint (NotImplemented, naming it).
  if (failure_.IsInvalid() || failure_.IsNotImplemented()) return false;
  const CheckpointOptions& checkpoint = plan_.options().checkpoint;
  if (recovery_.restarts >= checkpoint.max_restarts) {
    failure_ = failure_.WithMessage(failure_.message(), " (no restart left: ",
                                    recovery_.restarts, " of ", checkpoint.max_restarts,
                                    " restarts done)");
    return false;
  }
  const Clock::time_point failed_at = Clock::now();
  const arrow::Status cause = failure_;
  recovery_.last_failure = cause.message();
  SABOT_LOG(kWarning) << "job " << options_.job_id << " restarts (restart "
                      << recovery_.restarts + 1 << " of " << checkpoint.max_restarts
                      << "): " << cause.ToString();
  state_ = JobState::kRestarting;
  // Every agent that answers aborts the attempt's tasks (their uncommitted output goes) and
  // releases its shuffles; one that does not is lost.
  for (AgentRun& run : runs_) {
    if (!run.deployed || run.lost) continue;
    ControlMessage request;
    request.Set("job_id", job_id_);
    request.Set("reason", "job '" + options_.job_id + "' restarts: " + cause.message());
    auto aborted = Call(&run, kActionAbortJob, request);
    if (!aborted.ok()) {
      run.last_error = aborted.status();
      // Unreachable (no process listens: killed) is lost; slow to answer is not.
      auto detail = arrow::flight::FlightStatusDetail::UnwrapStatus(aborted.status());
      if (detail != nullptr && detail->code() == arrow::flight::FlightStatusCode::Unavailable) {
        run.lost = true;
      }
    }
  }
  ReleaseAll();
  AbandonCheckpoint("the job restarts", /*failed=*/false);
  if (options_.on_progress) options_.on_progress(Info());
  std::vector<std::string> lost;
  for (const AgentRun& run : runs_) {
    if (run.lost) lost.push_back(run.endpoint->id);
  }
  // The restart strategy's delay, interrupted by a cancel.
  double delay_ms = static_cast<double>(checkpoint.restart_delay.count());
  for (int32_t k = 0; k < recovery_.restarts; ++k) delay_ms *= checkpoint.restart_backoff;
  const auto delay = std::min<std::chrono::milliseconds>(
      checkpoint.max_restart_delay,
      std::chrono::milliseconds(static_cast<int64_t>(std::min(delay_ms, 1e12))));
  const Clock::time_point resume = failed_at + delay;
  while (Clock::now() < resume) {
    if (options_.cancel != nullptr && options_.cancel->load()) {
      failure_ = arrow::Status::Cancelled("job '", options_.job_id,
                                          "' was cancelled while it waited to restart");
      return false;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(kCancelCheck, resume - Clock::now()));
  }
  // Slots for the next attempt.
  arrow::Result<std::vector<AgentEndpoint>> agents =
      arrow::Status::UnknownError("no agents chosen");
  if (options_.replace_agents) {
    agents = options_.replace_agents(lost, slots_needed_);
  } else {
    std::vector<AgentEndpoint> live;
    int32_t slots = 0;
    for (const AgentRun& run : runs_) {
      if (run.lost) continue;
      live.push_back(*run.endpoint);
      slots += run.endpoint->slots;
    }
    if (slots < slots_needed_) {
      agents = arrow::Status::CapacityError("the live agents have ", slots, " slots; the job needs ",
                                            slots_needed_);
    } else {
      agents = std::move(live);
    }
  }
  if (!agents.ok()) {
    failure_ = agents.status().WithMessage("job '", options_.job_id, "' cannot restart after (",
                                           cause.message(), "): ", agents.status().message());
    return false;
  }
  // The newest checkpoint of this run whose files verify (none: from the start).
  auto latest = storage_->LatestValid();
  if (!latest.ok()) {
    failure_ = latest.status().WithMessage("job '", options_.job_id,
                                           "' cannot restart: reading its checkpoints: ",
                                           latest.status().message());
    return false;
  }
  recovery_.restored_checkpoint =
      *latest && (*latest)->id >= first_checkpoint_ ? (*latest)->id : kNoCheckpoint;
  ++recovery_.restarts;
  ++recovery_.attempts;
  job_id_ = options_.job_id + "-a" + std::to_string(recovery_.attempts - 1);
  agents_ = std::move(*agents);
  failure_ = arrow::Status::OK();
  failed_task_ = -1;
  stall_.emplace(options_.stall_timeout, Clock::now());
  // Checkpoint ids go on increasing: the failed attempt's directories are never reused.
  auto next = storage_->NextId();
  if (next.ok()) next_checkpoint_ = std::max(next_checkpoint_, *next);
  next_trigger_ = Clock::now() + checkpoint.interval;
  arrow::Status placed = Place();
  arrow::Status deployed = placed.ok() ? Deploy() : placed;
  if (!deployed.ok()) {
    // A deployment that fails (an agent lost meanwhile) is a failure of the new attempt: it may
    // restart again, within the bound.
    Fail(deployed);
    return Restart();
  }
  recovery_.recovery_times.push_back(Clock::now() - failed_at);
  SABOT_LOG(kInfo) << "job " << options_.job_id << " restarted as attempt " << recovery_.attempts
                   << (recovery_.restored_checkpoint != kNoCheckpoint
                           ? " from checkpoint " + std::to_string(recovery_.restored_checkpoint)
                           : std::string(" from the start"))
                   << " on " << agents_.size() << " agents";
  return true;
}

arrow::Result<JobReport> Driver::Run() {
  ARROW_ASSIGN_OR_RAISE(plan_json_, PlanToJson(plan_));
  for (const AgentEndpoint& agent : agents_) slots_needed_ += agent.slots;
  int32_t largest = 1;
  for (const ChainSpec& chain : graph_.chains()) largest = std::max(largest, chain.parallelism);
  slots_needed_ = std::min(slots_needed_, largest);
  ARROW_RETURN_NOT_OK(Place());
  // Lineage recovery of blocking batch jobs (checkpoints refuse blocking edges: the two never
  // apply to the same job).
  lineage_ = CheckLineageRecoverable(graph_).ok();
  task_attempt_.assign(graph_.tasks().size(), 0);
  const CheckpointOptions& checkpoint = plan_.options().checkpoint;
  if (checkpoint.enabled()) {
    if (checkpoint.directory.empty()) {
      return arrow::Status::Invalid("job '", options_.job_id,
                                    "' has checkpoints every ", checkpoint.interval.count(),
                                    " ms but no checkpoint directory");
    }
    ARROW_ASSIGN_OR_RAISE(storage_, CheckpointStorage::Open(checkpoint.directory,
                                                            options_.job_id, checkpoint.retained));
    ARROW_ASSIGN_OR_RAISE(next_checkpoint_, storage_->NextId());
    next_checkpoint_ = std::max<CheckpointId>(next_checkpoint_, 1);
    first_checkpoint_ = next_checkpoint_;
    next_trigger_ = Clock::now() + checkpoint.interval;
  }
  // Calls fail within the agent timeout; the driver retries status calls itself until then.
  ShuffleClientOptions client = options_.client;
  client.max_attempts = 1;
  client.call_timeout = std::min(client.call_timeout.count() > 0 ? client.call_timeout
                                                                 : options_.agent_timeout,
                                 options_.agent_timeout);
  ARROW_ASSIGN_OR_RAISE(client_, ShuffleClient::Make(client));
  // Deploy and commit do real work on the agent (binding the plan reads file metadata; a commit
  // phase counts and renames): bounded by max(agent timeout, long call timeout), never more than
  // the client's own call timeout.
  long_call_timeout_ = std::max(options_.agent_timeout, options_.long_call_timeout);
  if (options_.client.call_timeout.count() > 0) {
    long_call_timeout_ = std::min(long_call_timeout_, options_.client.call_timeout);
  }
  ShuffleClientOptions long_client = options_.client;
  long_client.max_attempts = 1;
  long_client.call_timeout = long_call_timeout_;
  ARROW_ASSIGN_OR_RAISE(auto made, ShuffleClient::Make(long_client));
  long_client_ = std::move(made);

  auto next_progress = Clock::now() + options_.progress_interval;
  arrow::Status deployed = Deploy();
  if (!deployed.ok()) Fail(deployed);
  bool running = failure_.ok() || Restart();
  bool commit_done = false;  // committed (or failed committing) inside the loop: lineage jobs
  while (running) {
    std::chrono::microseconds pause = kFirstStatusPoll;
    bool done = false;
    while (true) {
      done = Poll();
      if (failure_.ok() && lineage_pending_) {
        lineage_pending_ = false;
        arrow::Status recovered = RecoverLineage();
        if (!recovered.ok()) Fail(std::move(recovered));
        done = false;
      }
      if (failure_.ok() && options_.cancel != nullptr && options_.cancel->load()) {
        Fail(arrow::Status::Cancelled("job '", options_.job_id, "' was cancelled"));
      }
      if (!failure_.ok()) break;
      if (done && lineage_) {
        // A lineage-recoverable job commits here: an agent lost while it commits is recovered
        // from (its work runs again) and the job commits again once that is done.
        commit_done = true;
        if (!CommitOrRecover()) {
          commit_done = false;
          continue;
        }
        break;
      }
      if (done) break;
      if (storage_ != nullptr) Checkpoint();
      Progress(&next_progress);
      std::this_thread::sleep_for(pause);
      pause = std::min<std::chrono::microseconds>(
          kStatusPoll, std::chrono::microseconds(static_cast<int64_t>(
                           static_cast<double>(pause.count()) * kStatusPollGrowth)));
    }
    if (failure_.ok()) break;
    running = Restart();
  }
  if (failure_.ok() && !commit_done) {
    // Every task finished: a checkpoint still pending is moot (given up once the agents released
    // the job, below); the commit publishes all.
    arrow::Status committed = Commit();
    if (!committed.ok()) Fail(committed);
  }
  if (options_.recovery != nullptr) *options_.recovery = recovery_;
  if (!failure_.ok()) {
    state_ = failure_.IsCancelled() ? JobState::kCancelled : JobState::kFailed;
    AbortAll(failure_);
    if (options_.on_progress) options_.on_progress(Info());
    ReleaseAll();
    GiveUpPendingCheckpoint();
    return failure_;
  }
  // The final figures, after every task finished.
  (void)Poll();
  state_ = JobState::kFinished;
  JobReport report = Report();
  report.reruns = reruns_;
  if (options_.agent_figures != nullptr) {
    options_.agent_figures->clear();
    for (const AgentRun& run : runs_) {
      AgentJobFigures figures;
      figures.id = run.endpoint->id;
      figures.tasks = static_cast<int32_t>(run.tasks.size());
      if (run.status) {
        figures.peak_budget_bytes = run.status->peak_memory_bytes;
        figures.memory_budget_bytes = run.status->memory_budget_bytes;
        figures.peak_rss_bytes = run.status->peak_rss_bytes;
      }
      options_.agent_figures->push_back(std::move(figures));
    }
  }
  if (options_.on_progress) options_.on_progress(Info());
  ReleaseAll();
  GiveUpPendingCheckpoint();
  return report;
}

}  // namespace

arrow::Status CheckDistributedPlan(const LogicalPlan& plan) {
  for (const OperatorSpec& spec : plan.operators()) {
    if (spec.kind() == OperatorKind::kCollectSink) {
      return arrow::Status::Invalid(
          OperatorLabel(spec),
          ": a collect sink keeps its rows in the memory of one process; a distributed job "
          "cannot run it (write to a file sink instead)");
    }
    if (spec.kind() == OperatorKind::kTableSource) {
      return arrow::Status::Invalid(
          OperatorLabel(spec),
          ": a table source reads an in-memory table of one process; a distributed job cannot "
          "run it (read files instead)");
    }
  }
  return arrow::Status::OK();
}

arrow::Result<JobReport> RunDistributedJob(const LogicalPlan& plan,
                                           const std::vector<AgentEndpoint>& agents,
                                           const DistributedJobOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateId(options.job_id, "job id"));
  if (options.job_id.size() > kMaxJobIdLength) {
    return arrow::Status::Invalid("job id '", options.job_id, "' is longer than ",
                                  kMaxJobIdLength, " characters");
  }
  if (options.agent_timeout.count() <= 0) {
    return arrow::Status::Invalid("the agent timeout must be positive");
  }
  ARROW_RETURN_NOT_OK(CheckDistributedPlan(plan));
  // A restart's attempt id is "<job id>-a<k>".
  if (plan.options().checkpoint.enabled() && options.job_id.size() + 6 > kMaxJobIdLength) {
    return arrow::Status::Invalid("job id '", options.job_id, "' of a job with checkpoints must ",
                                  "be at most ", kMaxJobIdLength - 6, " characters");
  }
  ARROW_ASSIGN_OR_RAISE(ExecutionGraph graph, ExecutionGraph::Make(plan));
  Driver driver(plan, agents, options, std::move(graph));
  return driver.Run();
}

}  // namespace sabot
